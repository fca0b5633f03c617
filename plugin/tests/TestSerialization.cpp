/* What a process with only OpenMM and libOpenMMHybrid.so (no libtorch) can do with a
 * TorchModuleForce: the XML round trip through XmlSerializer (force, System, clone), refusal of
 * broken XML, and, once OpenMM has loaded the library as a plugin (as it does from its plugin
 * directory at `import openmm`), a Context refused with a message that says to import
 * openmm_hybrid.
 *
 * usage: TestSerialization <libOpenMMHybrid.so>      prints "ok" on success */
#include "OpenMM.h"
#include "TorchModuleForce.h"
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

using namespace OpenMM;
using namespace OpenMMHybrid;
using namespace std;

static int failures = 0;

#define CHECK(condition) do { if (!(condition)) { cerr << __LINE__ << ": failed: " #condition << endl; failures++; } } while (0)

static void expectThrow(const string& xml, const string& fragment) {
    try {
        stringstream stream(xml);
        delete XmlSerializer::deserialize<Force>(stream);
        cerr << "no exception for XML with '" << fragment << "'" << endl;
        failures++;
    }
    catch (const OpenMMException& e) {
        if (string(e.what()).find(fragment) == string::npos) {
            cerr << "unexpected message: " << e.what() << endl;
            failures++;
        }
    }
}

static string serialize(const Force& force) {
    stringstream stream;
    XmlSerializer::serialize<Force>(&force, "Force", stream);
    return stream.str();
}

static void checkSame(const TorchModuleForce& a, const TorchModuleForce& b) {
    CHECK(a.getModuleBytes() == b.getModuleBytes());
    CHECK(a.getName() == b.getName());
    CHECK(a.getForceGroup() == b.getForceGroup());
    CHECK(a.usesPeriodicBoundaryConditions() == b.usesPeriodicBoundaryConditions());
    CHECK(a.getNumGlobalParameters() == b.getNumGlobalParameters());
    for (int i = 0; i < min(a.getNumGlobalParameters(), b.getNumGlobalParameters()); i++) {
        CHECK(a.getGlobalParameterName(i) == b.getGlobalParameterName(i));
        CHECK(a.getGlobalParameterDefaultValue(i) == b.getGlobalParameterDefaultValue(i));
    }
    CHECK(a.getNumEnergyParameterDerivatives() == b.getNumEnergyParameterDerivatives());
    for (int i = 0; i < min(a.getNumEnergyParameterDerivatives(), b.getNumEnergyParameterDerivatives()); i++)
        CHECK(a.getEnergyParameterDerivativeName(i) == b.getEnergyParameterDerivativeName(i));
}

static void testRoundTrip() {
    // every byte value, and every length modulo 3 (base64 padding)
    string all;
    for (int i = 0; i < 256; i++)
        all += (char) i;
    for (string bytes : {string("\x01"), string("\x00\xff", 2), string("PK\x03"), all, all + all.substr(0, 7)}) {
        TorchModuleForce force(bytes);
        force.setName("ML region");
        force.setForceGroup(3);
        force.setUsesPeriodicBoundaryConditions(bytes.size() % 2 == 0);
        force.addGlobalParameter("lambda_interpolate", 0.25);
        force.addGlobalParameter("scale", -1.5e-7);
        force.addEnergyParameterDerivative("lambda_interpolate");
        string xml = serialize(force);
        CHECK(xml.find("type=\"TorchModuleForce\"") != string::npos);
        stringstream stream(xml);
        Force* copy = XmlSerializer::deserialize<Force>(stream);
        TorchModuleForce* typed = dynamic_cast<TorchModuleForce*>(copy);
        CHECK(typed != nullptr);
        if (typed != nullptr) {
            checkSame(force, *typed);
            CHECK(serialize(*typed) == xml);
        }
        delete copy;
        Force* clone = XmlSerializer::clone<Force>(force);
        CHECK(dynamic_cast<TorchModuleForce*>(clone) != nullptr);
        if (dynamic_cast<TorchModuleForce*>(clone) != nullptr)
            checkSame(force, *dynamic_cast<TorchModuleForce*>(clone));
        delete clone;
    }
}

static void testSystem() {
    System system;
    for (int i = 0; i < 3; i++)
        system.addParticle(12.0);
    HarmonicBondForce* bonds = new HarmonicBondForce();
    bonds->addBond(0, 1, 0.15, 1000.0);
    system.addForce(bonds);
    TorchModuleForce* first = new TorchModuleForce("first module");
    first->addGlobalParameter("k", 2.0);
    system.addForce(first);
    TorchModuleForce* second = new TorchModuleForce(string("second\0module", 13));
    second->setForceGroup(1);
    system.addForce(second);
    stringstream buffer;
    XmlSerializer::serialize<System>(&system, "System", buffer);
    System* copy = XmlSerializer::deserialize<System>(buffer);
    CHECK(copy->getNumForces() == 3);
    CHECK(dynamic_cast<HarmonicBondForce*>(&copy->getForce(0)) != nullptr);
    TorchModuleForce* a = dynamic_cast<TorchModuleForce*>(&copy->getForce(1));
    TorchModuleForce* b = dynamic_cast<TorchModuleForce*>(&copy->getForce(2));
    CHECK(a != nullptr && b != nullptr);
    if (a != nullptr && b != nullptr) {
        checkSame(*first, *a);
        checkSame(*second, *b);
    }
    delete copy;
}

static void testBrokenXml() {
    TorchModuleForce force("module");
    string xml = serialize(force);
    string version = xml;
    version.replace(version.find("version=\"1\""), 11, "version=\"2\"");
    expectThrow(version, "unsupported XML version 2");
    string broken = xml;
    size_t start = broken.find("module=\"") + 8;
    broken.replace(start, 4, "b@d!");
    expectThrow(broken, "not valid base64");
}

/* The library never brings libtorch into the process. */
static void testNoLibtorch() {
    ifstream maps("/proc/self/maps");
    string line;
    while (getline(maps, line))
        if (line.find("libtorch") != string::npos || line.find("libc10") != string::npos) {
            cerr << "libtorch is loaded: " << line << endl;
            failures++;
            return;
        }
}

/* OpenMM loads libOpenMMHybrid.so as a plugin (registerKernelFactories): a Context with the
 * force is refused, by name of the fix, on every platform. */
static void testKernelsNotLoaded(const string& library) {
    Platform::loadPluginLibrary(library);
    System system;
    system.addParticle(1.0);
    system.addForce(new TorchModuleForce("not loaded: the kernel is never created"));
    VerletIntegrator integrator(0.001);
    try {
        Context context(system, integrator, Platform::getPlatformByName("Reference"));
        cerr << "the Context was created without the kernels" << endl;
        failures++;
    }
    catch (const OpenMMException& e) {
        string message = e.what();
        if (message.find("its kernels are not loaded") == string::npos ||
                message.find("`import openmm_hybrid`") == string::npos) {
            cerr << "unexpected message: " << message << endl;
            failures++;
        }
    }
}

int main(int argc, char* argv[]) {
    if (argc != 2) {
        cerr << "usage: " << argv[0] << " libOpenMMHybrid.so" << endl;
        return 2;
    }
    try {
        testRoundTrip();
        testSystem();
        testBrokenXml();
        testKernelsNotLoaded(argv[1]);
        testNoLibtorch();
    }
    catch (const exception& e) {
        cerr << "exception: " << e.what() << endl;
        failures++;
    }
    cout << (failures == 0 ? "ok" : "FAILED") << endl;
    return failures == 0 ? 0 : 1;
}
