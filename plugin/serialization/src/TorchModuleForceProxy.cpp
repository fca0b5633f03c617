#include "TorchModuleForceProxy.h"
#include "TorchModuleForce.h"
#include "openmm/OpenMMException.h"
#include "openmm/serialization/SerializationNode.h"
#include <string>

using namespace OpenMMHybrid;
using namespace OpenMM;
using namespace std;

static const char BASE64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static string encodeBase64(const string& bytes) {
    string out;
    out.reserve(4 * ((bytes.size() + 2) / 3));
    size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        unsigned int v = ((unsigned char) bytes[i] << 16) | ((unsigned char) bytes[i+1] << 8) | (unsigned char) bytes[i+2];
        out += BASE64[(v >> 18) & 63];
        out += BASE64[(v >> 12) & 63];
        out += BASE64[(v >> 6) & 63];
        out += BASE64[v & 63];
    }
    size_t rest = bytes.size() - i;
    if (rest > 0) {
        unsigned int v = (unsigned char) bytes[i] << 16;
        if (rest == 2)
            v |= (unsigned char) bytes[i+1] << 8;
        out += BASE64[(v >> 18) & 63];
        out += BASE64[(v >> 12) & 63];
        out += (rest == 2 ? BASE64[(v >> 6) & 63] : '=');
        out += '=';
    }
    return out;
}

static string decodeBase64(const string& text) {
    int value[256];
    for (int& v : value)
        v = -1;
    for (int i = 0; i < 64; i++)
        value[(unsigned char) BASE64[i]] = i;
    string out;
    out.reserve(3 * text.size() / 4);
    unsigned int buffer = 0;
    int bits = 0;
    for (char c : text) {
        if (c == '=')
            break;
        if (c == '\n' || c == '\r' || c == ' ' || c == '\t')
            continue;
        int v = value[(unsigned char) c];
        if (v < 0)
            throw OpenMMException("TorchModuleForce: the 'module' attribute is not valid base64");
        buffer = (buffer << 6) | v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += (char) ((buffer >> bits) & 0xFF);
        }
    }
    return out;
}

TorchModuleForceProxy::TorchModuleForceProxy() : SerializationProxy("TorchModuleForce") {
}

void TorchModuleForceProxy::serialize(const void* object, SerializationNode& node) const {
    node.setIntProperty("version", 1);
    const TorchModuleForce& force = *reinterpret_cast<const TorchModuleForce*>(object);
    node.setIntProperty("forceGroup", force.getForceGroup());
    node.setStringProperty("name", force.getName());
    node.setBoolProperty("usesPeriodic", force.usesPeriodicBoundaryConditions());
    node.setStringProperty("module", encodeBase64(force.getModuleBytes()));
    SerializationNode& globalParams = node.createChildNode("GlobalParameters");
    for (int i = 0; i < force.getNumGlobalParameters(); i++)
        globalParams.createChildNode("Parameter").setStringProperty("name", force.getGlobalParameterName(i))
                .setDoubleProperty("default", force.getGlobalParameterDefaultValue(i));
    SerializationNode& derivatives = node.createChildNode("EnergyParameterDerivatives");
    for (int i = 0; i < force.getNumEnergyParameterDerivatives(); i++)
        derivatives.createChildNode("Parameter").setStringProperty("name", force.getEnergyParameterDerivativeName(i));
}

void* TorchModuleForceProxy::deserialize(const SerializationNode& node) const {
    int version = node.getIntProperty("version");
    if (version != 1)
        throw OpenMMException("TorchModuleForce: unsupported XML version " + to_string(version) +
                              " (this build reads version 1)");
    TorchModuleForce* force = new TorchModuleForce(decodeBase64(node.getStringProperty("module")));
    try {
        force->setForceGroup(node.getIntProperty("forceGroup", 0));
        force->setName(node.getStringProperty("name", force->getName()));
        force->setUsesPeriodicBoundaryConditions(node.getBoolProperty("usesPeriodic", false));
        for (const SerializationNode& parameter : node.getChildNode("GlobalParameters").getChildren())
            force->addGlobalParameter(parameter.getStringProperty("name"), parameter.getDoubleProperty("default"));
        for (const SerializationNode& parameter : node.getChildNode("EnergyParameterDerivatives").getChildren())
            force->addEnergyParameterDerivative(parameter.getStringProperty("name"));
    }
    catch (...) {
        delete force;
        throw;
    }
    return force;
}
