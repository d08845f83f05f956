"""Report: figures and rendering."""
