"""The course's tooling: what the notebooks need to teach, beside the library a practitioner imports.

Self-checks (``exercises``), widgets, model diagrams, generated sample data (``drawing``, ``sample_data``,
``toy_data``), dataset downloads (``download``, ``safe_download``), a resized copy of the photos
(``resized_cache``), readings rendered from the run (``reading``) and the grader of handed-in exercise notebooks
(``grade``, which runs each in its own kernel through ``cell_runner``). The library beside it (``unet_tutorial.model``,
``losses``, ``metrics``, ``train``, ...) never imports from here, except the command line, which offers the
course's commands too.
"""
