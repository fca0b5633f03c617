#ifndef OPENMM_HYBRID_PLUGIN_REGISTRATION_H_
#define OPENMM_HYBRID_PLUGIN_REGISTRATION_H_

#include "internal/windowsExportHybrid.h"

namespace OpenMMHybrid {

/**
 * Whether the running libOpenMM is the OpenMM version libOpenMMHybrid was compiled against.
 * The library uses OpenMM's C++ API (SerializationNode, Platform) of exactly that version; one
 * left in OpenMM's plugin directory after OpenMM changed version registers nothing (no XML
 * proxy, no kernel factory) instead of crashing, and openmm_hybrid refuses it with a message.
 */
OPENMM_HYBRID_EXPORT bool builtForRunningOpenMM();

} // namespace OpenMMHybrid

/** The OpenMM version libOpenMMHybrid was compiled against (openmm_hybrid compares it). */
extern "C" OPENMM_HYBRID_EXPORT const char* openmmHybridBuiltForOpenMM();

#endif /*OPENMM_HYBRID_PLUGIN_REGISTRATION_H_*/
