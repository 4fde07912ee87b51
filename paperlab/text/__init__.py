"""Substrate of the text systems: the offline all-MiniLM-L6-v2 encoder (:mod:`.minilm`), the
staged text readers (:mod:`.data`) and one fine-tuning trainer for sequence classification with
a checkpoint cache (:mod:`.train`). It imports :mod:`paperlab.core` only, never a system."""
