#include "CudaTorchModuleKernels.h"
#include "openmm/OpenMMException.h"
#include "openmm/common/ContextSelector.h"
#include "openmm/internal/ContextImpl.h"
#include <c10/cuda/CUDAStream.h>

using namespace OpenMMHybrid;
using namespace OpenMM;
using namespace std;

/**
 * Makes the device's primary context (libtorch's) current for a scope and restores the
 * previous one.  OpenMM's CUDA platform runs in a context of its own (cuCtxCreate): device
 * memory is shared between the two, but streams, events and the context stack are not.
 */
class PrimaryContextScope {
public:
    explicit PrimaryContextScope(CUcontext primary) {
        if (cuCtxPushCurrent(primary) != CUDA_SUCCESS)
            throw OpenMMException("TorchModuleForce: cannot make the CUDA primary context current");
    }
    ~PrimaryContextScope() {
        CUcontext popped;
        cuCtxPopCurrent(&popped);
    }
};

CudaCalcTorchModuleForceKernel::CudaCalcTorchModuleForceKernel(string name, const Platform& platform, CudaContext& cu)
        : CalcTorchModuleForceKernel(name, platform), cu(cu) {
    if (cuDevicePrimaryCtxRetain(&primaryContext, cu.getDevice()) != CUDA_SUCCESS)
        throw OpenMMException("TorchModuleForce: cannot retain the CUDA primary context of device " +
                              to_string(cu.getDeviceIndex()));
}

CudaCalcTorchModuleForceKernel::~CudaCalcTorchModuleForceKernel() {
    cuDevicePrimaryCtxRelease(cu.getDevice());
}

void CudaCalcTorchModuleForceKernel::initialize(const System& system, const TorchModuleForce& force) {
    // The CUDA platform reports only the parameter derivatives that were registered with it.
    for (int i = 0; i < force.getNumEnergyParameterDerivatives(); i++)
        cu.addEnergyParameterDerivative(force.getEnergyParameterDerivativeName(i));
    PrimaryContextScope scope(primaryContext);
    runner.initialize(force, torch::Device(torch::kCUDA, cu.getDeviceIndex()));
}

double CudaCalcTorchModuleForceKernel::execute(ContextImpl& context, bool includeForces, bool includeEnergy) {
    // OpenMM's kernels that wrote the coordinates run on its own stream in its own context:
    // wait for them, run the module on libtorch's stream in the primary context, and wait for
    // libtorch (the forces it adds) before OpenMM queues more work.
    {
        ContextSelector selector(cu);
        if (cuStreamSynchronize(cu.getCurrentStream()) != CUDA_SUCCESS)
            throw OpenMMException("TorchModuleForce: synchronising with OpenMM's CUDA stream failed");
    }
    PrimaryContextScope scope(primaryContext);
    double energy = compute(context, includeForces);
    c10::cuda::getCurrentCUDAStream(cu.getDeviceIndex()).synchronize();
    return energy;
}

double CudaCalcTorchModuleForceKernel::compute(ContextImpl& context, bool includeForces) {
    const int device = cu.getDeviceIndex();
    const int numAtoms = cu.getNumAtoms(), padded = cu.getPaddedNumAtoms();
    const auto onDevice = torch::TensorOptions().device(torch::kCUDA, device);
    const auto realType = cu.getUseDoublePrecision() ? torch::kFloat64 : torch::kFloat32;

    // Coordinates: posq holds (x, y, z, charge) per atom in OpenMM's sorted order (plus a
    // correction term in mixed precision); atomIndex[j] is the original index of sorted atom j.
    torch::Tensor posq = torch::from_blob(reinterpret_cast<void*>(cu.getPosq().getDevicePointer()), {padded, 4},
                                          onDevice.dtype(realType));
    torch::Tensor sorted = posq.narrow(0, 0, numAtoms).narrow(1, 0, 3).to(torch::kFloat64);
    if (cu.getUseMixedPrecision()) {
        torch::Tensor correction = torch::from_blob(reinterpret_cast<void*>(cu.getPosqCorrection().getDevicePointer()),
                                                    {padded, 4}, onDevice.dtype(torch::kFloat32));
        sorted = sorted + correction.narrow(0, 0, numAtoms).narrow(1, 0, 3).to(torch::kFloat64);
    }
    torch::Tensor order = torch::from_blob(reinterpret_cast<void*>(cu.getAtomIndexArray().getDevicePointer()),
                                           {padded}, onDevice.dtype(torch::kInt32)).narrow(0, 0, numAtoms).to(torch::kInt64);
    torch::Tensor positions = torch::empty({numAtoms, 3}, onDevice.dtype(torch::kFloat64));
    positions.index_copy_(0, order, sorted);

    torch::Tensor box;
    if (runner.usesPeriodic()) {
        Vec3 a, b, c;
        cu.getPeriodicBoxVectors(a, b, c);
        double values[9] = {a[0], a[1], a[2], b[0], b[1], b[2], c[0], c[1], c[2]};
        box = torch::from_blob(values, {3, 3}, torch::kFloat64).to(onDevice.dtype(torch::kFloat64));
    }

    torch::Tensor grad;
    double energy = runner.run(context, positions, box, includeForces, grad, cu.getEnergyParamDerivWorkspace());
    if (includeForces && grad.defined()) {
        // The force buffer is 64-bit fixed point, x for all (padded) atoms, then y, then z;
        // OpenMM converts with a truncating cast of force * 2^32, as here.
        torch::Tensor forces = torch::from_blob(reinterpret_cast<void*>(cu.getLongForceBuffer().getDevicePointer()),
                                                {3, padded}, onDevice.dtype(torch::kInt64));
        torch::Tensor fixed = (grad.index_select(0, order).t() * -4294967296.0).to(torch::kInt64);
        forces.narrow(1, 0, numAtoms).add_(fixed);
    }

    return energy;
}
