#ifndef OPENMM_HYBRID_CUDA_TORCH_MODULE_KERNELS_H_
#define OPENMM_HYBRID_CUDA_TORCH_MODULE_KERNELS_H_

#include "TorchModuleKernels.h"
#include "TorchModuleRunner.h"
#include "openmm/cuda/CudaContext.h"

namespace OpenMMHybrid {

/**
 * TorchModuleForce on the CUDA platform: the module runs with libtorch on the GPU of the
 * OpenMM context, reading OpenMM's coordinate array and adding to its fixed-point force
 * buffer on the device (no host round trip; only the energy and the requested parameter
 * derivatives come back to the host).
 */
class CudaCalcTorchModuleForceKernel : public CalcTorchModuleForceKernel {
public:
    CudaCalcTorchModuleForceKernel(std::string name, const OpenMM::Platform& platform, OpenMM::CudaContext& cu);
    ~CudaCalcTorchModuleForceKernel();
    void initialize(const OpenMM::System& system, const TorchModuleForce& force);
    double execute(OpenMM::ContextImpl& context, bool includeForces, bool includeEnergy);
private:
    double compute(OpenMM::ContextImpl& context, bool includeForces);
    OpenMM::CudaContext& cu;
    CUcontext primaryContext;  // libtorch's context on the same device
    TorchModuleRunner runner;
};

} // namespace OpenMMHybrid

#endif /*OPENMM_HYBRID_CUDA_TORCH_MODULE_KERNELS_H_*/
