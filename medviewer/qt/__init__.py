"""The Qt user interface (PySide6 + pyqtgraph): the only package that imports Qt."""
