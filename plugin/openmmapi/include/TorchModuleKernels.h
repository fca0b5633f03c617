#ifndef OPENMM_HYBRID_TORCH_MODULE_KERNELS_H_
#define OPENMM_HYBRID_TORCH_MODULE_KERNELS_H_

/* The kernel interface of TorchModuleForce: one implementation per platform
 * (platforms/reference for every platform derived from ReferencePlatform). */

#include "TorchModuleForce.h"
#include "openmm/KernelImpl.h"
#include "openmm/Platform.h"
#include "openmm/System.h"
#include <string>

namespace OpenMMHybrid {

/**
 * Computes the energy of a TorchModuleForce and adds its forces (and energy-parameter
 * derivatives) to the platform's accumulators.
 */
class CalcTorchModuleForceKernel : public OpenMM::KernelImpl {
public:
    static std::string Name() {
        return "CalcTorchModuleForce";
    }
    CalcTorchModuleForceKernel(std::string name, const OpenMM::Platform& platform) : OpenMM::KernelImpl(name, platform) {
    }
    /**
     * Initialize the kernel: load the force's TorchScript module.
     *
     * @param system     the System this kernel will be applied to
     * @param force      the TorchModuleForce this kernel will be used for
     */
    virtual void initialize(const OpenMM::System& system, const TorchModuleForce& force) = 0;
    /**
     * Execute the kernel to calculate the forces and/or energy.
     *
     * @param context        the context in which to execute this kernel
     * @param includeForces  true if forces should be calculated
     * @param includeEnergy  true if the energy should be calculated
     * @return the potential energy due to the force (kJ/mol)
     */
    virtual double execute(OpenMM::ContextImpl& context, bool includeForces, bool includeEnergy) = 0;
};

} // namespace OpenMMHybrid

#endif /*OPENMM_HYBRID_TORCH_MODULE_KERNELS_H_*/
