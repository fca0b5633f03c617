#ifndef OPENMM_HYBRID_TORCH_MODULE_FORCE_IMPL_H_
#define OPENMM_HYBRID_TORCH_MODULE_FORCE_IMPL_H_

#include "TorchModuleForce.h"
#include "openmm/Kernel.h"
#include "openmm/internal/ForceImpl.h"
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace OpenMMHybrid {

/**
 * The ForceImpl of TorchModuleForce: declares its kernel and global parameters and
 * calls the kernel when the force's group is evaluated.
 */
class OPENMM_HYBRID_EXPORT TorchModuleForceImpl : public OpenMM::ForceImpl {
public:
    explicit TorchModuleForceImpl(const TorchModuleForce& owner);
    ~TorchModuleForceImpl();
    void initialize(OpenMM::ContextImpl& context);
    const TorchModuleForce& getOwner() const {
        return owner;
    }
    void updateContextState(OpenMM::ContextImpl& context, bool& forcesInvalid) {
    }
    double calcForcesAndEnergy(OpenMM::ContextImpl& context, bool includeForces, bool includeEnergy, int groups);
    std::map<std::string, double> getDefaultParameters();
    std::vector<std::string> getKernelNames();
private:
    const TorchModuleForce& owner;
    OpenMM::Kernel kernel;
};

} // namespace OpenMMHybrid

#endif /*OPENMM_HYBRID_TORCH_MODULE_FORCE_IMPL_H_*/
