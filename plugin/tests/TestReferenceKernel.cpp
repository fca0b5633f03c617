/* The libtorch kernel of TorchModuleForce on the Reference and CPU platforms, loaded the way a
 * Python process loads it: OpenMM first loads libOpenMMHybrid.so as a plugin (from its plugin
 * directory at `import openmm`), which refuses the force; `import openmm_hybrid` then loads
 * libOpenMMHybridReference.so, whose kernels replace the refusal and must survive a second
 * loading of the API library.  Energies, forces and energy-parameter derivatives of the modules
 * written by make_test_modules.py are compared with the same formulas evaluated here, also
 * after an XML round trip.
 *
 * usage: TestReferenceKernel <libOpenMMHybrid.so> <libOpenMMHybridReference.so> <libOpenMMCPU.so> <module dir>
 * prints "ok" on success */
#include "OpenMM.h"
#include "TorchModuleForce.h"
#include <cmath>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

using namespace OpenMM;
using namespace OpenMMHybrid;
using namespace std;

static int failures = 0;

/* Relative agreement: the module and this file sum the same double-precision terms in different
 * orders, so they agree to rounding (about 1e-15 relative), far inside this tolerance. */
static void checkClose(double actual, double expected, const string& what, double scale = 0.0) {
    double tolerance = 1e-10 * max(fabs(expected), scale);
    if (!(fabs(actual - expected) <= tolerance)) {
        cerr.precision(17);
        cerr << what << ": " << actual << " != " << expected << endl;
        failures++;
    }
}

static string readFile(const string& path) {
    ifstream file(path, ios::binary);
    if (!file)
        throw OpenMMException("cannot read " + path + " (written by make_test_modules.py)");
    stringstream buffer;
    buffer << file.rdbuf();
    return buffer.str();
}

static vector<Vec3> testPositions(int n) {
    vector<Vec3> positions;
    for (int i = 0; i < n; i++)  // deterministic, spread over about 1 nm
        positions.push_back(Vec3(0.37 * sin(1.3 * i + 0.2), 0.41 * cos(0.7 * i), 0.29 * sin(2.1 * i + 1.0) + 0.05 * i));
    return positions;
}

/* pairs.pt: E = k sum_i |x_i - c|^2 + a sum_{i<j} exp(-r_ij^2 / S2) */
static void pairsReference(const vector<Vec3>& x, double k, double a, double& energy, vector<Vec3>& forces,
                           double& dEdk, double& dEda) {
    const Vec3 c(0.1, -0.2, 0.3);
    const double s2 = 0.5;
    int n = x.size();
    forces.assign(n, Vec3());
    dEdk = dEda = 0.0;
    for (int i = 0; i < n; i++) {
        Vec3 d = x[i] - c;
        dEdk += d.dot(d);
        forces[i] -= d * (2 * k);
        for (int j = i + 1; j < n; j++) {
            Vec3 r = x[i] - x[j];
            double e = exp(-r.dot(r) / s2);
            dEda += e;
            forces[i] += r * (2 * a * e / s2);
            forces[j] -= r * (2 * a * e / s2);
        }
    }
    energy = k * dEdk + a * dEda;
}

static Context* makeContext(System& system, const string& platform, Integrator& integrator) {
    return new Context(system, integrator, Platform::getPlatformByName(platform));
}

static bool refusedUntilImported(System& system, const string& platform) {
    VerletIntegrator integrator(0.001);
    try {
        Context context(system, integrator, Platform::getPlatformByName(platform));
    }
    catch (const OpenMMException& e) {
        return string(e.what()).find("`import openmm_hybrid`") != string::npos;
    }
    return false;
}

static void testPairs(System& system, const string& platform, const string& label) {
    const int n = 7;
    VerletIntegrator integrator(0.001);
    Context* context = makeContext(system, platform, integrator);
    vector<Vec3> x = testPositions(n);
    context->setPositions(x);
    for (double k : {1.0, 2.5}) {
        context->setParameter("k", k);
        State state = context->getState(State::Energy | State::Forces | State::ParameterDerivatives);
        double energy, dEdk, dEda;
        vector<Vec3> forces;
        pairsReference(x, k, 3.0, energy, forces, dEdk, dEda);
        string where = label + " " + platform + " k=" + to_string(k);
        checkClose(state.getPotentialEnergy(), energy, where + " energy");
        double largest = 0;
        for (const Vec3& f : forces)
            largest = max(largest, sqrt(f.dot(f)));
        for (int i = 0; i < n; i++)
            for (int j = 0; j < 3; j++)
                checkClose(state.getForces()[i][j], forces[i][j], where + " force " + to_string(i), largest);
        map<string, double> derivatives = state.getEnergyParameterDerivatives();
        checkClose(derivatives["k"], dEdk, where + " dE/dk");
        checkClose(derivatives["a"], dEda, where + " dE/da");
        if (fabs(energy) < 1.0 || largest < 1.0) {
            cerr << where << ": the test positions give no meaningful comparison" << endl;
            failures++;
        }
    }
    delete context;
}

static void testBox(System& system, const string& platform) {
    VerletIntegrator integrator(0.001);
    Context* context = makeContext(system, platform, integrator);
    vector<Vec3> x = testPositions(system.getNumParticles());
    context->setPositions(x);
    Vec3 box[3] = {Vec3(2.1, 0, 0), Vec3(0.3, 1.9, 0), Vec3(-0.4, 0.5, 2.3)};
    context->setPeriodicBoxVectors(box[0], box[1], box[2]);
    const double weights[3][3] = {{1, 2, 3}, {10, 20, 30}, {100, 200, 300}};
    const Vec3 slope(0.5, -1.5, 2.5);
    double expected = 0;
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            expected += weights[a][b] * box[a][b];
    for (const Vec3& p : x)
        expected += slope.dot(p);
    State state = context->getState(State::Energy | State::Forces);
    checkClose(state.getPotentialEnergy(), expected, "box " + platform + " energy");
    for (const Vec3& f : state.getForces())
        for (int j = 0; j < 3; j++)
            checkClose(f[j], -slope[j], "box " + platform + " force", 1.0);
    delete context;
}

int main(int argc, char* argv[]) {
    if (argc != 5) {
        cerr << "usage: " << argv[0] << " libOpenMMHybrid.so libOpenMMHybridReference.so libOpenMMCPU.so MODULE_DIR" << endl;
        return 2;
    }
    try {
        Platform::loadPluginLibrary(argv[3]);  // OpenMM's CPU platform (a plugin)
        System pairs;
        for (int i = 0; i < 7; i++)
            pairs.addParticle(1.0);
        TorchModuleForce* force = new TorchModuleForce(readFile(string(argv[4]) + "/pairs.pt"));
        force->addGlobalParameter("k", 1.0);
        force->addGlobalParameter("a", 3.0);
        force->addEnergyParameterDerivative("k");
        force->addEnergyParameterDerivative("a");
        pairs.addForce(force);

        // as after `import openmm` with libOpenMMHybrid.so in OpenMM's plugin directory
        Platform::loadPluginLibrary(argv[1]);
        for (const string platform : {"Reference", "CPU"})
            if (!refusedUntilImported(pairs, platform)) {
                cerr << platform << ": the force was not refused with the message to import openmm_hybrid" << endl;
                failures++;
            }
        // as `import openmm_hybrid`, then OpenMM loading its plugin directory once more
        Platform::loadPluginLibrary(argv[2]);
        Platform::loadPluginLibrary(argv[1]);
        for (const string platform : {"Reference", "CPU"}) {
            if (!platformHasTorchModuleKernel(platform)) {
                cerr << platform << " has no native kernel" << endl;
                failures++;
            }
            testPairs(pairs, platform, "direct");
        }
        stringstream xml;
        XmlSerializer::serialize<System>(&pairs, "System", xml);
        System* reloaded = XmlSerializer::deserialize<System>(xml);
        testPairs(*reloaded, "Reference", "from XML");
        delete reloaded;

        System periodic;
        for (int i = 0; i < 4; i++)
            periodic.addParticle(1.0);
        periodic.setDefaultPeriodicBoxVectors(Vec3(3, 0, 0), Vec3(0, 3, 0), Vec3(0, 0, 3));
        TorchModuleForce* boxForce = new TorchModuleForce(readFile(string(argv[4]) + "/box.pt"));
        boxForce->setUsesPeriodicBoundaryConditions(true);
        periodic.addForce(boxForce);
        for (const string platform : {"Reference", "CPU"})
            testBox(periodic, platform);
    }
    catch (const exception& e) {
        cerr << "exception: " << e.what() << endl;
        failures++;
    }
    cout << (failures == 0 ? "ok" : "FAILED") << endl;
    return failures == 0 ? 0 : 1;
}
