#ifndef OPENMM_HYBRID_TORCH_MODULE_RUNNER_H_
#define OPENMM_HYBRID_TORCH_MODULE_RUNNER_H_

#include "TorchModuleForce.h"
#include "openmm/internal/ContextImpl.h"
#include <torch/script.h>
#include <map>
#include <string>
#include <vector>

namespace OpenMMHybrid {

/**
 * What every platform's TorchModuleForce kernel does with the module itself: load it on a
 * device, call it with positions, box and global parameters, and differentiate the energy.
 * The kernels only bring the platform's positions in and take the forces out.
 */
class TorchModuleRunner {
public:
    /** Load and freeze the force's module on ``device``; read its parameters and derivatives. */
    void initialize(const TorchModuleForce& force, const torch::Device& device);
    /**
     * Evaluate the module.
     *
     * @param context             gives the global parameters' current values
     * @param positions           (numParticles, 3) float64 on the runner's device, nm
     * @param box                 (3, 3) float64 box vectors (nm) on the device; used only if the force is periodic
     * @param includeForces       compute dE/dpositions into ``positionGradient``
     * @param positionGradient    set to dE/dpositions (kJ/mol/nm, float64, same shape and device), or left
     *                            undefined when the energy does not depend on the positions
     * @param parameterDerivatives dE/dparameter is added here for each requested derivative
     * @return the energy, kJ/mol
     */
    double run(OpenMM::ContextImpl& context, const torch::Tensor& positions, const torch::Tensor& box,
               bool includeForces, torch::Tensor& positionGradient, std::map<std::string, double>& parameterDerivatives);
    bool usesPeriodic() const {
        return usePeriodic;
    }
    const std::string& name() const {
        return forceName;
    }
private:
    torch::jit::Module module;
    torch::Device device = torch::kCPU;
    std::string forceName;
    bool usePeriodic = false;
    std::vector<std::string> globalNames;
    std::vector<bool> wantsDerivative;
};

} // namespace OpenMMHybrid

#endif /*OPENMM_HYBRID_TORCH_MODULE_RUNNER_H_*/
