/* What happens to TorchModuleForce on a platform that is not derived from ReferencePlatform
 * (CUDA, OpenCL, HIP), checked without a GPU: a stand-in platform ("FakeGPU", faster than CPU)
 * runs OpenMM's Reference kernels for everything else, and is registered before the plugin's
 * kernel library is loaded, exactly as OpenMM's GPU plugins are.  Creating a Context with a
 * TorchModuleForce on it, explicitly or by OpenMM's default choice, must fail with the
 * plugin's message naming openmm_hybrid.ml_force.for_platform; the platform must not be
 * reported as having a native kernel.  CTest runs this (tests/test_plugin_ctest.py).
 *
 * usage: TestOtherPlatformRefusal <libOpenMMHybridReference.so>     prints "ok" on success */
#include "OpenMM.h"
#include "TorchModuleForce.h"
#include "openmm/internal/ContextImpl.h"
#include "openmm/reference/ReferenceKernelFactory.h"
#include "openmm/reference/ReferencePlatform.h"
#include <iostream>
#include <string>

using namespace OpenMM;
using namespace std;

static const char* KERNELS[] = {"CalcForcesAndEnergyKernel", "UpdateTime", "ApplyConstraints", "VirtualSites",
                                "Minimize", "IntegrateVerletStep", "CalcHarmonicBondForce"};

class FakeGpuPlatform : public Platform {
public:
    FakeGpuPlatform() {
        ReferenceKernelFactory* factory = new ReferenceKernelFactory();
        for (const char* name : KERNELS)
            registerKernelFactory(name, factory);
    }
    const string& getName() const {
        static const string name = "FakeGPU";
        return name;
    }
    double getSpeed() const {
        return 1000.0;
    }
    bool supportsDoublePrecision() const {
        return true;
    }
    void contextCreated(ContextImpl& context, const map<string, string>& properties) const {
        context.setPlatformData(new ReferencePlatform::PlatformData(context.getSystem(), 1));
    }
    void contextDestroyed(ContextImpl& context) const {
        delete reinterpret_cast<ReferencePlatform::PlatformData*>(context.getPlatformData());
    }
};

static bool refused(System& system, Platform* platform) {
    VerletIntegrator integrator(0.001);
    try {
        if (platform == nullptr)
            Context context(system, integrator);
        else
            Context context(system, integrator, *platform);
    }
    catch (const OpenMMException& e) {
        string message = e.what();
        if (message.find("no kernel for the FakeGPU platform") != string::npos &&
                message.find("openmm_hybrid.ml_force.for_platform(system, 'FakeGPU')") != string::npos)
            return true;
        cerr << "unexpected message: " << message << endl;
        return false;
    }
    cerr << "the Context was created" << endl;
    return false;
}

int main(int argc, char* argv[]) {
    if (argc != 2) {
        cerr << "usage: " << argv[0] << " libOpenMMHybridReference.so" << endl;
        return 2;
    }
    FakeGpuPlatform* fake = new FakeGpuPlatform();
    Platform::registerPlatform(fake);
    Platform::loadPluginLibrary(argv[1]);
    System system;
    system.addParticle(1.0);
    system.addParticle(1.0);
    system.addForce(new OpenMMHybrid::TorchModuleForce("not needed: the kernel is never created"));
    bool ok = refused(system, fake) && refused(system, nullptr);
    ok = ok && !OpenMMHybrid::platformHasTorchModuleKernel("FakeGPU");
    ok = ok && OpenMMHybrid::platformHasTorchModuleKernel("Reference");
    // a System without the force still runs on the stand-in platform
    System plain;
    plain.addParticle(1.0);
    plain.addParticle(1.0);
    HarmonicBondForce* bond = new HarmonicBondForce();
    bond->addBond(0, 1, 0.1, 100.0);
    plain.addForce(bond);
    VerletIntegrator integrator(0.001);
    Context context(plain, integrator, *fake);
    context.setPositions({Vec3(0, 0, 0), Vec3(0.2, 0, 0)});
    double energy = context.getState(State::Energy).getPotentialEnergy();
    ok = ok && abs(energy - 0.5) < 1e-12;
    cout << (ok ? "ok" : "FAILED") << endl;
    return ok ? 0 : 1;
}
