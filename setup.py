"""Build the optional C extension of paperlab.softmax; all metadata lives in pyproject.toml.

The extension needs only a C compiler: its SIMD kernels carry per-function target
attributes and are chosen at run time from the CPU's features, so the build never uses
-march=native. If it cannot be built (no compiler), installation still succeeds and
paperlab.softmax falls back to a NumPy path that says so.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildExt(build_ext):
    """Optimisation flags for GCC/Clang only; MSVC keeps its defaults."""

    def build_extensions(self) -> None:
        if self.compiler.compiler_type == "unix":
            for ext in self.extensions:
                ext.extra_compile_args = ["-O3", "-std=c99", "-fno-math-errno"]
        super().build_extensions()


softmax = Extension(
    "paperlab.softmax._csoftmax",
    sources=["paperlab/softmax/csrc/softmax.c"],
    depends=["paperlab/softmax/csrc/kernels.h"],
    optional=True,  # a failed build warns instead of failing the install
)

setup(ext_modules=[softmax], cmdclass={"build_ext": BuildExt})
