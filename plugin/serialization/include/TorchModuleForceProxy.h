#ifndef OPENMM_HYBRID_TORCH_MODULE_FORCE_PROXY_H_
#define OPENMM_HYBRID_TORCH_MODULE_FORCE_PROXY_H_

#include "internal/windowsExportHybrid.h"
#include "openmm/serialization/SerializationProxy.h"

namespace OpenMMHybrid {

/**
 * XML serialization of TorchModuleForce (type "TorchModuleForce").  The module is stored
 * base64-encoded in the "module" attribute, so a system.xml is self-contained.
 */
class OPENMM_HYBRID_EXPORT TorchModuleForceProxy : public OpenMM::SerializationProxy {
public:
    TorchModuleForceProxy();
    void serialize(const void* object, OpenMM::SerializationNode& node) const;
    void* deserialize(const OpenMM::SerializationNode& node) const;
};

} // namespace OpenMMHybrid

#endif /*OPENMM_HYBRID_TORCH_MODULE_FORCE_PROXY_H_*/
