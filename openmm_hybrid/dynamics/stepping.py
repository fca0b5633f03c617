"""Integration steps that stop with a clear error when the simulation blows up."""
import openmm

from ..errors import SimulationError

__all__ = ["step_or_stop"]


def step_or_stop(simulation, steps: int, stage: str = "") -> None:
    """``simulation.step(steps)``; NaN coordinates raise :class:`SimulationError` naming the step.

    OpenMM notices NaN coordinates before a reporter sees the energy; it stops at the first step
    of the chunk that produced them (the reporter interval bounds the chunk).  ``stage`` names
    the part of the run in the message (``" of the warm-up"``).
    """
    try:
        simulation.step(steps)
    except openmm.OpenMMException as exc:
        if "nan" not in str(exc).lower():
            raise
        raise SimulationError(f"energy is not finite at step {simulation.currentStep}{stage} (OpenMM: {exc}); "
                              f"the simulation blew up: try a smaller time step or check the "
                              f"starting structure") from exc
