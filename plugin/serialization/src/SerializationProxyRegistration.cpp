#include "TorchModuleForce.h"
#include "TorchModuleForceProxy.h"
#include "internal/PluginRegistration.h"
#include "openmm/serialization/SerializationProxy.h"

using namespace OpenMMHybrid;
using namespace OpenMM;

/* Registers the XML proxy as soon as libOpenMMHybrid is loaded (as OpenMM's own plugins
 * do), so XmlSerializer.deserialize, XmlSerializer.clone, copy.deepcopy of a System and
 * CustomCVForce (which clones its collective variables through XML) all work, also in a
 * process that loaded only OpenMM (which loads this library from its plugin directory).
 * Nothing is registered under an OpenMM version other than the one compiled against. */
extern "C" OPENMM_HYBRID_EXPORT void registerOpenMMHybridSerializationProxies() {
    static bool registered = false;
    if (registered || !builtForRunningOpenMM())
        return;
    registered = true;
    SerializationProxy::registerProxy(typeid(TorchModuleForce), new TorchModuleForceProxy());
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((constructor)) static void initOpenMMHybridSerialization() {
    registerOpenMMHybridSerializationProxies();
}
#endif
