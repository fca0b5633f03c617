"""Build output of the compiled plugin (``plugin/build_plugin.py``); load it through
:mod:`openmm_hybrid.plugin`, never directly."""
