#ifndef OPENMM_HYBRID_CUDA_TORCH_MODULE_KERNEL_FACTORY_H_
#define OPENMM_HYBRID_CUDA_TORCH_MODULE_KERNEL_FACTORY_H_

#include "openmm/KernelFactory.h"

namespace OpenMMHybrid {

/** Creates the libtorch (GPU) kernel of TorchModuleForce for the CUDA platform. */
class CudaTorchModuleKernelFactory : public OpenMM::KernelFactory {
public:
    OpenMM::KernelImpl* createKernelImpl(std::string name, const OpenMM::Platform& platform, OpenMM::ContextImpl& context) const;
};

} // namespace OpenMMHybrid

#endif /*OPENMM_HYBRID_CUDA_TORCH_MODULE_KERNEL_FACTORY_H_*/
