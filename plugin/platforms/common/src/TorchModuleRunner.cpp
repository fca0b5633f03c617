#include "TorchModuleRunner.h"
#include "openmm/OpenMMException.h"
#include <torch/csrc/autograd/engine.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/basic_ops.h>
#include <torch/csrc/autograd/variable.h>
#include <sstream>

using namespace OpenMMHybrid;
using namespace OpenMM;
using namespace std;

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


void TorchModuleRunner::initialize(const TorchModuleForce& force, const torch::Device& device) {
    this->device = device;
    forceName = force.getName();
    const string& bytes = force.getModuleBytes();
    try {
        istringstream stream(bytes);
        module = torch::jit::load(stream, device);
    }
    catch (const std::exception& e) {
        throw OpenMMException("TorchModuleForce '" + forceName + "': cannot load its TorchScript module (" +
                              to_string(bytes.size()) + " bytes) on " + device.str() + ": " + e.what());
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

double TorchModuleRunner::run(ContextImpl& context, const torch::Tensor& positions, const torch::Tensor& box,
                              bool includeForces, torch::Tensor& positionGradient, map<string, double>& parameterDerivatives) {
    const auto float64 = torch::TensorOptions().dtype(torch::kFloat64).device(device);

    // Autograd records only what a requested derivative needs: nothing for an energy-only
    // evaluation, only the parameter's path for dE/dparameter without forces.
    bool anyDerivative = false;
    for (bool wanted : wantsDerivative)
        anyDerivative = anyDerivative || wanted;
    torch::AutoGradMode gradMode(includeForces || anyDerivative);

    torch::Tensor posTensor = positions;
    if (includeForces)
        posTensor = positions.detach().requires_grad_(true);
    vector<torch::jit::IValue> inputs{posTensor};
    if (usePeriodic)
        inputs.emplace_back(box);
    vector<torch::Tensor> gradInputs;
    if (includeForces)
        gradInputs.push_back(posTensor);
    vector<int> derivativeOf;  // index into globalNames of each parameter tensor in gradInputs
    for (size_t i = 0; i < globalNames.size(); i++) {
        torch::Tensor value = torch::full({}, context.getParameter(globalNames[i]), float64);
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

    positionGradient = torch::Tensor();
    if (!gradInputs.empty()) {
        vector<torch::Tensor> grads;
        if (energy.requires_grad())
            grads = gradients(energy, gradInputs);
        else
            grads.resize(gradInputs.size());  // the energy depends on none of them: all derivatives are 0
        size_t next = 0;
        if (includeForces) {
            torch::Tensor grad = grads[next++];
            if (grad.defined())
                positionGradient = grad.to(torch::kFloat64).contiguous();
        }
        for (int index : derivativeOf) {
            const torch::Tensor& grad = grads[next++];
            parameterDerivatives[globalNames[index]] += (grad.defined() ? grad.item<double>() : 0.0);
        }
    }
    return energy.item<double>();
}
