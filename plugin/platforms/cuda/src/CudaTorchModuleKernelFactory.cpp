#include "CudaTorchModuleKernelFactory.h"
#include "CudaTorchModuleKernels.h"
#include "TorchModuleForce.h"
#include "openmm/OpenMMException.h"
#include "openmm/cuda/CudaPlatform.h"
#include "openmm/internal/ContextImpl.h"

using namespace OpenMMHybrid;
using namespace OpenMM;
using namespace std;

/* Loaded (Platform::loadPluginLibrary) after libOpenMMHybridReference.so, whose factory for
 * other platforms only refuses the force: registering here replaces it for CUDA. */

extern "C" OPENMM_HYBRID_EXPORT void registerPlatforms() {
}

extern "C" OPENMM_HYBRID_EXPORT void registerKernelFactories() {
    for (int i = 0; i < Platform::getNumPlatforms(); i++) {
        Platform& platform = Platform::getPlatform(i);
        if (dynamic_cast<CudaPlatform*>(&platform) != nullptr) {
            platform.registerKernelFactory(CalcTorchModuleForceKernel::Name(), new CudaTorchModuleKernelFactory());
            registerTorchModuleKernelPlatform(platform.getName());
        }
    }
}

KernelImpl* CudaTorchModuleKernelFactory::createKernelImpl(string name, const Platform& platform, ContextImpl& context) const {
    CudaPlatform::PlatformData& data = *static_cast<CudaPlatform::PlatformData*>(context.getPlatformData());
    if (name == CalcTorchModuleForceKernel::Name())
        return new CudaCalcTorchModuleForceKernel(name, platform, *data.contexts[0]);
    throw OpenMMException("CudaTorchModuleKernelFactory: unknown kernel '" + name + "'");
}
