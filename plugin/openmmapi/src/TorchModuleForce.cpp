#include "TorchModuleForce.h"
#include "internal/TorchModuleForceImpl.h"
#include "openmm/OpenMMException.h"
#include <mutex>
#include <set>
#include <string>

using namespace OpenMMHybrid;
using namespace OpenMM;
using namespace std;

static void checkIndex(int index, size_t size, const char* what) {
    if (index < 0 || index >= (int) size)
        throw OpenMMException("TorchModuleForce: " + string(what) + " index " + to_string(index) +
                              " is out of range (the force has " + to_string(size) + ")");
}

TorchModuleForce::TorchModuleForce(const string& moduleBytes) : moduleBytes(moduleBytes), periodic(false) {
    if (moduleBytes.empty())
        throw OpenMMException("TorchModuleForce: the serialized TorchScript module is empty");
}

const string& TorchModuleForce::getModuleBytes() const {
    return moduleBytes;
}

void TorchModuleForce::setUsesPeriodicBoundaryConditions(bool periodic) {
    this->periodic = periodic;
}

bool TorchModuleForce::usesPeriodicBoundaryConditions() const {
    return periodic;
}

int TorchModuleForce::getNumGlobalParameters() const {
    return globalParameters.size();
}

int TorchModuleForce::addGlobalParameter(const string& name, double defaultValue) {
    for (const GlobalParameterInfo& parameter : globalParameters)
        if (parameter.name == name)
            throw OpenMMException("TorchModuleForce: global parameter '" + name + "' was added twice");
    globalParameters.push_back(GlobalParameterInfo{name, defaultValue});
    return globalParameters.size() - 1;
}

const string& TorchModuleForce::getGlobalParameterName(int index) const {
    checkIndex(index, globalParameters.size(), "global parameter");
    return globalParameters[index].name;
}

void TorchModuleForce::setGlobalParameterName(int index, const string& name) {
    checkIndex(index, globalParameters.size(), "global parameter");
    globalParameters[index].name = name;
}

double TorchModuleForce::getGlobalParameterDefaultValue(int index) const {
    checkIndex(index, globalParameters.size(), "global parameter");
    return globalParameters[index].defaultValue;
}

void TorchModuleForce::setGlobalParameterDefaultValue(int index, double defaultValue) {
    checkIndex(index, globalParameters.size(), "global parameter");
    globalParameters[index].defaultValue = defaultValue;
}

void TorchModuleForce::addEnergyParameterDerivative(const string& name) {
    for (const string& existing : energyParameterDerivatives)
        if (existing == name)
            return;
    energyParameterDerivatives.push_back(name);
}

int TorchModuleForce::getNumEnergyParameterDerivatives() const {
    return energyParameterDerivatives.size();
}

const string& TorchModuleForce::getEnergyParameterDerivativeName(int index) const {
    checkIndex(index, energyParameterDerivatives.size(), "energy parameter derivative");
    return energyParameterDerivatives[index];
}

ForceImpl* TorchModuleForce::createImpl() const {
    return new TorchModuleForceImpl(*this);
}

// Platforms with a native kernel, recorded by the kernel plugins when OpenMM registers them.
static mutex& nativePlatformsLock() {
    static mutex lock;
    return lock;
}

static set<string>& nativePlatforms() {
    static set<string> names;
    return names;
}

void OpenMMHybrid::registerTorchModuleKernelPlatform(const string& platformName) {
    lock_guard<mutex> guard(nativePlatformsLock());
    nativePlatforms().insert(platformName);
}

bool OpenMMHybrid::platformHasTorchModuleKernel(const string& platformName) {
    lock_guard<mutex> guard(nativePlatformsLock());
    return nativePlatforms().count(platformName) > 0;
}
