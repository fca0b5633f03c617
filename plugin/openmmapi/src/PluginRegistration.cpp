#include "internal/PluginRegistration.h"
#include "TorchModuleKernels.h"
#include "openmm/KernelFactory.h"
#include "openmm/OpenMMException.h"
#include "openmm/Platform.h"
#include <string>

using namespace OpenMMHybrid;
using namespace OpenMM;
using namespace std;

#ifndef OPENMM_HYBRID_OPENMM_VERSION
#error "OPENMM_HYBRID_OPENMM_VERSION (the OpenMM version compiled against) must be defined by the build"
#endif

const char* openmmHybridBuiltForOpenMM() {
    return OPENMM_HYBRID_OPENMM_VERSION;
}

bool OpenMMHybrid::builtForRunningOpenMM() {
    return Platform::getOpenMMVersion() == OPENMM_HYBRID_OPENMM_VERSION;
}

namespace {

/**
 * The TorchModuleForce kernel factory of a process in which only this library is loaded: OpenMM
 * loaded it from its plugin directory (so that plain `import openmm` reads TorchModuleForce from
 * XML), but not the libtorch kernels.  Creating a Context refuses the force with what to do.
 */
class KernelsNotLoadedFactory : public KernelFactory {
public:
    KernelImpl* createKernelImpl(string name, const Platform& platform, ContextImpl& context) const {
        throw OpenMMException(
            "TorchModuleForce (openmm-hybrid's force for TorchScript modules) cannot run on the " + platform.getName() +
            " platform in this process: its kernels are not loaded.  OpenMM loaded only libOpenMMHybrid.so from its "
            "plugin directory, which reads and writes the force in XML.  In Python, run `import openmm_hybrid` before "
            "creating the Context (it loads the libtorch kernels); in C++, load libOpenMMHybridReference.so with "
            "Platform::loadPluginLibrary.");
    }
};

} // namespace

/* OpenMM calls this when it loads the library as a plugin (Platform::loadPluginsFromDirectory at
 * `import openmm`, or loadPluginLibrary).  A platform that already has a TorchModuleForce factory
 * keeps it: the kernel libraries (libOpenMMHybridReference.so, libOpenMMHybridCUDA.so) register
 * theirs afterwards and replace this one, and loading the plugin directory again must not undo
 * that. */
extern "C" OPENMM_HYBRID_EXPORT void registerKernelFactories() {
    if (!builtForRunningOpenMM())
        return;
    const vector<string> kernel = {CalcTorchModuleForceKernel::Name()};
    for (int i = 0; i < Platform::getNumPlatforms(); i++) {
        Platform& platform = Platform::getPlatform(i);
        if (!platform.supportsKernels(kernel))
            platform.registerKernelFactory(kernel[0], new KernelsNotLoadedFactory());
    }
}
