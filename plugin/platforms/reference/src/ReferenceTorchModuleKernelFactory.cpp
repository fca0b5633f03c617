#include "ReferenceTorchModuleKernelFactory.h"
#include "TorchModuleForce.h"
#include "TorchModuleKernels.h"
#include "openmm/OpenMMException.h"
#include "openmm/internal/ContextImpl.h"
#include "openmm/reference/ReferencePlatform.h"

using namespace OpenMMHybrid;
using namespace OpenMM;
using namespace std;

/* OpenMM calls these when the library is loaded with Platform::loadPluginLibrary
 * (openmm_hybrid does so on import). */

extern "C" OPENMM_HYBRID_EXPORT void registerPlatforms() {
}

extern "C" OPENMM_HYBRID_EXPORT void registerKernelFactories() {
    static bool registered = false;
    if (registered)
        return;
    registered = true;
    for (int i = 0; i < Platform::getNumPlatforms(); i++) {
        Platform& platform = Platform::getPlatform(i);
        if (dynamic_cast<ReferencePlatform*>(&platform) != nullptr) {
            platform.registerKernelFactory(CalcTorchModuleForceKernel::Name(), new ReferenceTorchModuleKernelFactory());
            registerTorchModuleKernelPlatform(platform.getName());
        }
        else
            platform.registerKernelFactory(CalcTorchModuleForceKernel::Name(), new UnsupportedPlatformTorchModuleKernelFactory());
    }
}

/* ReferenceTorchModuleKernelFactory::createKernelImpl is in ReferenceTorchModuleKernels.cpp:
 * this file then needs no libtorch headers, which take most of the build's time to compile. */

KernelImpl* UnsupportedPlatformTorchModuleKernelFactory::createKernelImpl(string name, const Platform& platform, ContextImpl& context) const {
    throw OpenMMException(
        "TorchModuleForce (openmm-hybrid's force for TorchScript modules) has no kernel for the " + platform.getName() +
        " platform; it runs on the Reference and CPU platforms.  To run this System on " + platform.getName() +
        ", convert it first with openmm_hybrid.ml_force.for_platform(system, '" + platform.getName() +
        "'), which replaces each TorchModuleForce by openmm-torch's TorchForce with the same module, "
        "or create the Context on the CPU platform.");
}
