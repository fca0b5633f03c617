#ifndef OPENMM_HYBRID_TORCH_MODULE_FORCE_H_
#define OPENMM_HYBRID_TORCH_MODULE_FORCE_H_

/* openmm-hybrid: an OpenMM Force that evaluates a TorchScript energy module.
 *
 * The force stores the module as the bytes written by torch.jit.save, so this
 * library (the API and its serialization proxy) does not depend on libtorch;
 * only the platform kernels load and run the module.
 */

#include "openmm/Force.h"
#include "internal/windowsExportHybrid.h"
#include <string>
#include <vector>

namespace OpenMMHybrid {

/**
 * A Force whose energy is computed by a TorchScript module and whose forces are the
 * module's autograd gradient.
 *
 * The module's forward method is called as
 *
 *     forward(positions)                               non-periodic, no global parameters
 *     forward(positions, boxvectors)                   periodic
 *     forward(positions, [boxvectors,] p1, p2, ...)    with global parameters, in the order added
 *
 * with positions of all particles in nm (float64, shape (N, 3)), box vectors in nm
 * (float64, shape (3, 3), one vector per row) and each global parameter's current value
 * as a 0-d float64 tensor.  It returns the energy in kJ/mol (a 0-d tensor).  This is
 * the convention of openmm-torch's TorchForce, so the same module runs in both.
 *
 * Energy derivatives with respect to global parameters (addEnergyParameterDerivative)
 * are computed by autograd and reported by State::getEnergyParameterDerivatives().
 */
class OPENMM_HYBRID_EXPORT TorchModuleForce : public OpenMM::Force {
public:
    /**
     * Create a TorchModuleForce.
     *
     * @param moduleBytes   the serialized TorchScript module (the contents of a file
     *                      written by torch.jit.save); must not be empty
     */
    explicit TorchModuleForce(const std::string& moduleBytes);
    /**
     * Get the serialized TorchScript module (the bytes written by torch.jit.save).
     */
    const std::string& getModuleBytes() const;
    /**
     * Set whether the module receives the periodic box vectors.
     */
    void setUsesPeriodicBoundaryConditions(bool periodic);
    /**
     * Whether the module receives the periodic box vectors.
     */
    bool usesPeriodicBoundaryConditions() const;
    /**
     * Get the number of global parameters passed to the module.
     */
    int getNumGlobalParameters() const;
    /**
     * Add a global parameter that is passed to the module (after positions and box).
     *
     * @return the index of the new parameter
     */
    int addGlobalParameter(const std::string& name, double defaultValue);
    const std::string& getGlobalParameterName(int index) const;
    void setGlobalParameterName(int index, const std::string& name);
    double getGlobalParameterDefaultValue(int index) const;
    void setGlobalParameterDefaultValue(int index, double defaultValue);
    /**
     * Request the derivative of the energy with respect to a global parameter of this force.
     */
    void addEnergyParameterDerivative(const std::string& name);
    int getNumEnergyParameterDerivatives() const;
    const std::string& getEnergyParameterDerivativeName(int index) const;
protected:
    OpenMM::ForceImpl* createImpl() const;
private:
    struct GlobalParameterInfo {
        std::string name;
        double defaultValue;
    };
    std::string moduleBytes;
    bool periodic;
    std::vector<GlobalParameterInfo> globalParameters;
    std::vector<std::string> energyParameterDerivatives;
};

/**
 * Whether the platform with this name has a native TorchModuleForce kernel (every
 * platform derived from ReferencePlatform once the Reference kernels are registered:
 * Reference and CPU).  Other platforms (CUDA, OpenCL, HIP) refuse the force with a
 * message saying how to convert it to openmm-torch's TorchForce.
 */
OPENMM_HYBRID_EXPORT bool platformHasTorchModuleKernel(const std::string& platformName);

/**
 * Record that a platform has a native kernel (called by the kernel plugins when they register).
 */
OPENMM_HYBRID_EXPORT void registerTorchModuleKernelPlatform(const std::string& platformName);

} // namespace OpenMMHybrid

#endif /*OPENMM_HYBRID_TORCH_MODULE_FORCE_H_*/
