#include "ReferenceTorchModuleKernels.h"
#include "ReferenceTorchModuleKernelFactory.h"
#include "openmm/OpenMMException.h"
#include "openmm/internal/ContextImpl.h"
#include "openmm/reference/ReferencePlatform.h"
#include <ATen/Parallel.h>
#include <algorithm>
#include <cstdlib>

using namespace OpenMMHybrid;
using namespace OpenMM;
using namespace std;

KernelImpl* ReferenceTorchModuleKernelFactory::createKernelImpl(string name, const Platform& platform, ContextImpl& context) const {
    if (name == CalcTorchModuleForceKernel::Name())
        return new ReferenceCalcTorchModuleForceKernel(name, platform);
    throw OpenMMException("ReferenceTorchModuleKernelFactory: unknown kernel '" + name + "'");
}

static ReferencePlatform::PlatformData& platformData(ContextImpl& context) {
    return *reinterpret_cast<ReferencePlatform::PlatformData*>(context.getPlatformData());
}

/**
 * Torch's intra-op thread count while this force runs, given torch's current count.
 *
 * On OpenMM's CPU platform the reciprocal-space PME work runs on a background thread while the
 * other forces are computed.  If torch then starts as many threads as there are cores, one of
 * them competes with that thread, and torch's parallel regions wait for the slowest one: on 2
 * cores the ANI-2x term of a solvated complex took 16 ms per step instead of 7 ms with one
 * torch thread (benchmarks/bench_mechanical.py).  So on the CPU platform torch gets at most the
 * platform's thread count minus one.  OPENMM_HYBRID_TORCH_THREADS (a positive integer) sets the
 * count on the Reference and CPU platforms instead.
 */
static int torchThreads(ContextImpl& context, int current) {
    const char* requested = getenv("OPENMM_HYBRID_TORCH_THREADS");
    if (requested != nullptr && *requested != '\0') {
        char* end;
        long value = strtol(requested, &end, 10);
        if (*end != '\0' || value < 1)
            throw OpenMMException(string("OPENMM_HYBRID_TORCH_THREADS must be a positive integer, not '") + requested + "'");
        return (int) value;
    }
    const Platform& platform = context.getPlatform();
    if (platform.getName() != "CPU")
        return current;
    int openmmThreads = stoi(platform.getPropertyValue(context.getOwner(), "Threads"));
    return min(current, max(1, openmmThreads - 1));
}

/** Sets torch's intra-op thread count for one scope and restores it afterwards (cheap with OpenMP). */
class TorchThreadScope {
public:
    TorchThreadScope(ContextImpl& context) : saved(at::get_num_threads()) {
        wanted = torchThreads(context, saved);
        if (wanted != saved)
            at::set_num_threads(wanted);
    }
    ~TorchThreadScope() {
        if (wanted != saved)
            at::set_num_threads(saved);
    }
private:
    int saved, wanted;
};

void ReferenceCalcTorchModuleForceKernel::initialize(const System& system, const TorchModuleForce& force) {
    runner.initialize(force, torch::kCPU);
}

double ReferenceCalcTorchModuleForceKernel::execute(ContextImpl& context, bool includeForces, bool includeEnergy) {
    ReferencePlatform::PlatformData& data = platformData(context);
    TorchThreadScope threads(context);
    vector<Vec3>& positions = *data.positions;
    const int numParticles = positions.size();
    const auto float64 = torch::TensorOptions().dtype(torch::kFloat64);
    // OpenMM's positions (vector<Vec3>, three contiguous doubles each) and box vectors are
    // used in place, without copying.
    torch::Tensor posTensor = torch::from_blob(positions.data(), {numParticles, 3}, float64);
    torch::Tensor box;
    if (runner.usesPeriodic())
        box = torch::from_blob(data.periodicBoxVectors, {3, 3}, float64);
    torch::Tensor grad;
    double energy = runner.run(context, posTensor, box, includeForces, grad, *data.energyParameterDerivatives);
    if (includeForces && grad.defined()) {
        const double* g = grad.data_ptr<double>();
        vector<Vec3>& forces = *data.forces;
        for (int i = 0; i < numParticles; i++)
            forces[i] -= Vec3(g[3*i], g[3*i+1], g[3*i+2]);
    }
    return energy;
}
