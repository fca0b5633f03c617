#ifndef OPENMM_HYBRID_WINDOWS_EXPORT_H_
#define OPENMM_HYBRID_WINDOWS_EXPORT_H_

/* Symbol visibility of libOpenMMHybrid (only Linux and macOS builds are supported;
 * the Windows branch is kept so that the headers read like OpenMM's). */
#if defined(_MSC_VER)
    #if defined(OPENMM_HYBRID_BUILDING_SHARED_LIBRARY)
        #define OPENMM_HYBRID_EXPORT __declspec(dllexport)
    #else
        #define OPENMM_HYBRID_EXPORT __declspec(dllimport)
    #endif
#else
    #define OPENMM_HYBRID_EXPORT __attribute__((visibility("default")))
#endif

#endif /*OPENMM_HYBRID_WINDOWS_EXPORT_H_*/
