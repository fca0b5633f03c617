#ifndef OPENMM_HYBRID_REFERENCE_TORCH_MODULE_KERNEL_FACTORY_H_
#define OPENMM_HYBRID_REFERENCE_TORCH_MODULE_KERNEL_FACTORY_H_

#include "openmm/KernelFactory.h"

namespace OpenMMHybrid {

/**
 * Creates the libtorch (CPU) kernel of TorchModuleForce for every platform derived from
 * ReferencePlatform (Reference and CPU).
 */
class ReferenceTorchModuleKernelFactory : public OpenMM::KernelFactory {
public:
    OpenMM::KernelImpl* createKernelImpl(std::string name, const OpenMM::Platform& platform, OpenMM::ContextImpl& context) const;
};

/**
 * Registered for every other platform (CUDA, OpenCL, HIP, ...): creating the kernel fails
 * with a message that says how to run the force there (convert it to openmm-torch's
 * TorchForce) instead of OpenMM's generic "does not support all required kernels".
 */
class UnsupportedPlatformTorchModuleKernelFactory : public OpenMM::KernelFactory {
public:
    OpenMM::KernelImpl* createKernelImpl(std::string name, const OpenMM::Platform& platform, OpenMM::ContextImpl& context) const;
};

} // namespace OpenMMHybrid

#endif /*OPENMM_HYBRID_REFERENCE_TORCH_MODULE_KERNEL_FACTORY_H_*/
