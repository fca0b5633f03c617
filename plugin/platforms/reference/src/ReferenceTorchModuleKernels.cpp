#include "ReferenceTorchModuleKernels.h"
#include "openmm/OpenMMException.h"
#include "openmm/internal/ContextImpl.h"
#include "openmm/reference/ReferencePlatform.h"
#include <torch/csrc/autograd/engine.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/basic_ops.h>
#include <torch/csrc/autograd/variable.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cstdlib>
#include <sstream>

using namespace OpenMMHybrid;
using namespace OpenMM;
using namespace std;

static ReferencePlatform::PlatformData& platformData(ContextImpl& context) {
    return *reinterpret_cast<ReferencePlatform::PlatformData*>(context.getPlatformData());
}

/**
 * d(output)/d(inputs) for a 0-d output, like torch::autograd::grad(..., allow_unused=true),
 * but run by libtorch's base autograd engine.  torch::autograd::grad uses the default
 * engine, which becomes torch's Python engine once `import torch` has run, and that one
 * refuses to start while the calling thread holds the Python GIL (OpenMM keeps the GIL
 * while it runs Python reporters, e.g. during minimisation).  The graph of a TorchScript
 * module holds no Python code, so the base engine computes the same gradients without
 * needing the GIL.  CPU graphs are evaluated on the calling thread.
 */
static vector<torch::Tensor> gradients(const torch::Tensor& output, const vector<torch::Tensor>& inputs) {
    using namespace torch::autograd;
    edge_list roots{impl::gradient_edge(output)};
    if (!roots[0].function)
        throw OpenMMException("TorchModuleForce: the energy does not depend on the inputs that need gradients");
    edge_list outputEdges;
    for (const torch::Tensor& input : inputs) {
        shared_ptr<Node> gradFn = input.grad_fn();
        if (!gradFn)
            gradFn = impl::try_get_grad_accumulator(input);
        if (gradFn)
            outputEdges.emplace_back(gradFn, input.output_nr());
        else  // the energy does not depend on this input
            outputEdges.emplace_back(make_shared<Identity>(), 0);
    }
    variable_list seeds{torch::ones_like(output)};
    return Engine::get_base_engine().execute(roots, seeds, false, false, false, outputEdges);
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
    forceName = force.getName();
    const string& bytes = force.getModuleBytes();
    try {
        istringstream stream(bytes);
        module = torch::jit::load(stream, torch::kCPU);
    }
    catch (const std::exception& e) {
        throw OpenMMException("TorchModuleForce '" + forceName + "': cannot load its TorchScript module (" +
                              to_string(bytes.size()) + " bytes): " + e.what());
    }
    module.eval();
    // Freezing inlines parameters and attributes as constants, which lets the JIT optimise
    // the graph (openmm-torch's TorchForce does the same).  A module that cannot be frozen
    // still runs unfrozen.
    try {
        module = torch::jit::freeze(module);
    }
    catch (const std::exception&) {
    }
    usePeriodic = force.usesPeriodicBoundaryConditions();
    globalNames.clear();
    wantsDerivative.clear();
    for (int i = 0; i < force.getNumGlobalParameters(); i++) {
        const string& name = force.getGlobalParameterName(i);
        bool wanted = false;
        for (int j = 0; j < force.getNumEnergyParameterDerivatives(); j++)
            wanted = wanted || (force.getEnergyParameterDerivativeName(j) == name);
        globalNames.push_back(name);
        wantsDerivative.push_back(wanted);
    }
}

double ReferenceCalcTorchModuleForceKernel::execute(ContextImpl& context, bool includeForces, bool includeEnergy) {
    ReferencePlatform::PlatformData& data = platformData(context);
    TorchThreadScope threads(context);
    vector<Vec3>& positions = *data.positions;
    const int numParticles = positions.size();
    const auto float64 = torch::TensorOptions().dtype(torch::kFloat64);

    // Autograd records only what a requested derivative needs: nothing for an energy-only
    // evaluation, only the parameter's path for dE/dparameter without forces.
    bool anyDerivative = false;
    for (bool wanted : wantsDerivative)
        anyDerivative = anyDerivative || wanted;
    torch::AutoGradMode gradMode(includeForces || anyDerivative);

    // OpenMM's positions (vector<Vec3>, three contiguous doubles each) and box vectors are
    // used in place, without copying.
    torch::Tensor posTensor = torch::from_blob(positions.data(), {numParticles, 3}, float64);
    if (includeForces)
        posTensor.requires_grad_(true);
    vector<torch::jit::IValue> inputs{posTensor};
    if (usePeriodic)
        inputs.emplace_back(torch::from_blob(data.periodicBoxVectors, {3, 3}, float64));
    vector<torch::Tensor> gradInputs;
    if (includeForces)
        gradInputs.push_back(posTensor);
    vector<int> derivativeOf;  // index into globalNames of each parameter tensor in gradInputs
    for (size_t i = 0; i < globalNames.size(); i++) {
        torch::Tensor value = torch::scalar_tensor(context.getParameter(globalNames[i]), float64);
        if (wantsDerivative[i]) {
            value.requires_grad_(true);
            gradInputs.push_back(value);
            derivativeOf.push_back(i);
        }
        inputs.emplace_back(value);
    }

    torch::IValue output = module.forward(inputs);
    if (!output.isTensor())
        throw OpenMMException("TorchModuleForce '" + forceName + "': the module must return the energy as a "
                              "tensor, not " + output.tagKind());
    torch::Tensor energy = output.toTensor();
    if (energy.numel() != 1)
        throw OpenMMException("TorchModuleForce '" + forceName + "': the module returned " +
                              to_string(energy.numel()) + " values; it must return one energy (kJ/mol)");
    energy = energy.reshape({});

    if (!gradInputs.empty()) {
        vector<torch::Tensor> grads;
        if (energy.requires_grad())
            grads = gradients(energy, gradInputs);
        else
            grads.resize(gradInputs.size());  // the energy depends on none of them: all derivatives are 0
        size_t next = 0;
        if (includeForces) {
            torch::Tensor grad = grads[next++];
            if (grad.defined()) {
                grad = grad.to(torch::kFloat64).contiguous();
                const double* g = grad.data_ptr<double>();
                vector<Vec3>& forces = *data.forces;
                for (int i = 0; i < numParticles; i++)
                    forces[i] -= Vec3(g[3*i], g[3*i+1], g[3*i+2]);
            }
        }
        map<string, double>& derivatives = *data.energyParameterDerivatives;
        for (int index : derivativeOf) {
            const torch::Tensor& grad = grads[next++];
            derivatives[globalNames[index]] += (grad.defined() ? grad.item<double>() : 0.0);
        }
    }
    return energy.item<double>();
}
