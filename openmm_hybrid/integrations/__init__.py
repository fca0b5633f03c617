"""Adapters to other packages' extension points (:mod:`.openmmml`: openmm-ml)."""
