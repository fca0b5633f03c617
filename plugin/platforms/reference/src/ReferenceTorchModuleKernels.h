#ifndef OPENMM_HYBRID_REFERENCE_TORCH_MODULE_KERNELS_H_
#define OPENMM_HYBRID_REFERENCE_TORCH_MODULE_KERNELS_H_

#include "TorchModuleKernels.h"
#include "TorchModuleRunner.h"

namespace OpenMMHybrid {

/**
 * TorchModuleForce on platforms derived from ReferencePlatform (Reference, CPU): runs the
 * TorchScript module with libtorch on the CPU, reading OpenMM's positions and box in place.
 */
class ReferenceCalcTorchModuleForceKernel : public CalcTorchModuleForceKernel {
public:
    ReferenceCalcTorchModuleForceKernel(std::string name, const OpenMM::Platform& platform)
        : CalcTorchModuleForceKernel(name, platform) {
    }
    void initialize(const OpenMM::System& system, const TorchModuleForce& force);
    double execute(OpenMM::ContextImpl& context, bool includeForces, bool includeEnergy);
private:
    TorchModuleRunner runner;
};

} // namespace OpenMMHybrid

#endif /*OPENMM_HYBRID_REFERENCE_TORCH_MODULE_KERNELS_H_*/
