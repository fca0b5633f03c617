#include "internal/TorchModuleForceImpl.h"
#include "TorchModuleKernels.h"
#include "openmm/OpenMMException.h"
#include "openmm/internal/ContextImpl.h"
#include <set>

using namespace OpenMMHybrid;
using namespace OpenMM;
using namespace std;

TorchModuleForceImpl::TorchModuleForceImpl(const TorchModuleForce& owner) : owner(owner) {
    forceGroup = owner.getForceGroup();
}

TorchModuleForceImpl::~TorchModuleForceImpl() {
}

void TorchModuleForceImpl::initialize(ContextImpl& context) {
    // A derivative of a parameter the module never receives would silently be zero.
    set<string> names;
    for (int i = 0; i < owner.getNumGlobalParameters(); i++)
        names.insert(owner.getGlobalParameterName(i));
    for (int i = 0; i < owner.getNumEnergyParameterDerivatives(); i++)
        if (names.count(owner.getEnergyParameterDerivativeName(i)) == 0)
            throw OpenMMException("TorchModuleForce '" + owner.getName() + "': energy parameter derivative '" +
                                  owner.getEnergyParameterDerivativeName(i) +
                                  "' requested for a name that is not one of its global parameters");
    kernel = context.getPlatform().createKernel(CalcTorchModuleForceKernel::Name(), context);
    kernel.getAs<CalcTorchModuleForceKernel>().initialize(context.getSystem(), owner);
}

double TorchModuleForceImpl::calcForcesAndEnergy(ContextImpl& context, bool includeForces, bool includeEnergy, int groups) {
    if ((groups & (1 << forceGroup)) != 0)
        return kernel.getAs<CalcTorchModuleForceKernel>().execute(context, includeForces, includeEnergy);
    return 0.0;
}

map<string, double> TorchModuleForceImpl::getDefaultParameters() {
    map<string, double> parameters;
    for (int i = 0; i < owner.getNumGlobalParameters(); i++)
        parameters[owner.getGlobalParameterName(i)] = owner.getGlobalParameterDefaultValue(i);
    return parameters;
}

vector<string> TorchModuleForceImpl::getKernelNames() {
    return {CalcTorchModuleForceKernel::Name()};
}
