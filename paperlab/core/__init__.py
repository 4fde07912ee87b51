"""Plumbing shared by every system: data roots, seeding, timing, results, plots, registry.

``core`` never imports a system; the registry finds systems by name.
"""
