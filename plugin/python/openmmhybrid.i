/* Python bindings of openmm-hybrid's compiled plugin (SWIG, like openmm-torch).
 *
 * Built by python/CMakeLists.txt into the package's library directory beside the libraries
 * (openmmhybrid.py and _openmmhybrid*.so; no package name here: the generated module imports
 * its extension relatively); use it through openmm_hybrid.plugin, which loads the libraries in
 * the right order first. */
%module openmmhybrid

%import(module="openmm") "swig/OpenMMSwigHeaders.i"
%include "swig/typemaps.i"
%include <std_string.i>

%{
#include "TorchModuleForce.h"
#include "OpenMM.h"
#include "OpenMMAmoeba.h"
#include "OpenMMDrude.h"
#include "openmm/RPMDIntegrator.h"
#include "openmm/RPMDMonteCarloBarostat.h"
%}

/* C++ exceptions become openmm.OpenMMException, as in OpenMM's own bindings. */
%exception {
    try {
        $action
    } catch (std::exception &e) {
        PyObject* openmmModule = PyImport_ImportModule("openmm");
        PyObject* exceptionType = openmmModule ? PyObject_GetAttrString(openmmModule, "OpenMMException") : NULL;
        PyErr_Clear();
        PyErr_SetString(exceptionType ? exceptionType : PyExc_Exception, e.what());
        Py_XDECREF(exceptionType);
        Py_XDECREF(openmmModule);
        SWIG_fail;
    }
}

/* The module travels as Python bytes (the output of torch.jit.save), never as str. */
%typemap(in) const std::string& moduleBytes (std::string temp) {
    char* buffer;
    Py_ssize_t length;
    if (!PyBytes_Check($input)) {
        PyErr_SetString(PyExc_TypeError, "TorchModuleForce needs the TorchScript module as bytes (torch.jit.save output), "
                        "a torch.jit.ScriptModule or the path of a saved module");
        SWIG_fail;
    }
    if (PyBytes_AsStringAndSize($input, &buffer, &length) == -1)
        SWIG_fail;
    temp.assign(buffer, length);
    $1 = &temp;
}
%typemap(freearg) const std::string& moduleBytes ""
%typemap(typecheck, precedence=SWIG_TYPECHECK_STRING) const std::string& moduleBytes {
    $1 = PyBytes_Check($input) ? 1 : 0;
}

%pythonbegin %{
import io as _io
import os as _os
%}

%pythoncode %{
def _module_bytes(module):
    """bytes of a TorchScript module given as bytes, a torch.jit.ScriptModule or a file path."""
    if isinstance(module, (bytes, bytearray, memoryview)):
        return bytes(module)
    if isinstance(module, (str, _os.PathLike)):
        with open(module, "rb") as handle:
            return handle.read()
    import torch
    if isinstance(module, torch.jit.ScriptModule):
        buffer = _io.BytesIO()
        torch.jit.save(module, buffer)
        return buffer.getvalue()
    raise TypeError(f"TorchModuleForce needs a torch.jit.ScriptModule, its bytes (torch.jit.save) or the path of a "
                    f"saved module, not {type(module).__name__}")
%}

namespace OpenMMHybrid {

%feature("docstring") TorchModuleForce "An OpenMM Force whose energy (kJ/mol) is computed by a TorchScript module
and whose forces are its autograd gradient (openmm-hybrid's compiled plugin).

The module is called as forward(positions[, boxvectors][, parameter values...]) with
positions of all particles in nm (float64, (N, 3)), box vectors in nm ((3, 3), when
usesPeriodicBoundaryConditions()) and each global parameter's value as a 0-d float64
tensor, in the order added: openmm-torch's TorchForce convention.

TorchModuleForce(module): module is a torch.jit.ScriptModule, its bytes (torch.jit.save)
or the path of a saved module.  Runs on the Reference and CPU platforms; see
openmm_hybrid.ml_force.for_platform for GPU platforms.";

class TorchModuleForce : public OpenMM::Force {
public:
    %pythonprepend TorchModuleForce %{
        moduleBytes = _module_bytes(moduleBytes)
    %}
    TorchModuleForce(const std::string& moduleBytes);
    void setUsesPeriodicBoundaryConditions(bool periodic);
    bool usesPeriodicBoundaryConditions() const;
    int getNumGlobalParameters() const;
    int addGlobalParameter(const std::string& name, double defaultValue);
    const std::string& getGlobalParameterName(int index) const;
    void setGlobalParameterName(int index, const std::string& name);
    double getGlobalParameterDefaultValue(int index) const;
    void setGlobalParameterDefaultValue(int index, double defaultValue);
    void addEnergyParameterDerivative(const std::string& name);
    int getNumEnergyParameterDerivatives() const;
    const std::string& getEnergyParameterDerivativeName(int index) const;

    %extend {
        /* The serialized module (bytes, as written by torch.jit.save). */
        PyObject* getModuleBytes() const {
            const std::string& bytes = self->getModuleBytes();
            return PyBytes_FromStringAndSize(bytes.data(), bytes.size());
        }

        /* A Force read back from a System (an openmm.Force) as a TorchModuleForce. */
        static OpenMMHybrid::TorchModuleForce& cast(OpenMM::Force& force) {
            OpenMMHybrid::TorchModuleForce* result = dynamic_cast<OpenMMHybrid::TorchModuleForce*>(&force);
            if (result == NULL)
                throw OpenMM::OpenMMException("cast: the Force '" + force.getName() + "' is not a TorchModuleForce");
            return *result;
        }

        static bool isinstance(OpenMM::Force& force) {
            return (dynamic_cast<OpenMMHybrid::TorchModuleForce*>(&force) != NULL);
        }

        %newobject _copy;
        static OpenMMHybrid::TorchModuleForce* _copy(const OpenMMHybrid::TorchModuleForce& force) {
            return new OpenMMHybrid::TorchModuleForce(force);
        }

        %pythoncode %{
            def getModule(self):
                """The TorchScript module, loaded with torch.jit.load (on the CPU)."""
                import torch
                return torch.jit.load(_io.BytesIO(self.getModuleBytes()), map_location="cpu")

            # OpenMM's Force.__copy__ clones through XML into a plain openmm.Force; a copy
            # constructor keeps the Python type.
            def __copy__(self):
                return TorchModuleForce._copy(self)

            def __deepcopy__(self, memo):
                return TorchModuleForce._copy(self)

            def __getstate__(self):
                import openmm
                return openmm.XmlSerializer.serialize(self)

            def __setstate__(self, state):
                import openmm
                force = openmm.XmlSerializer.deserialize(state)
                copy = TorchModuleForce._copy(TorchModuleForce.cast(force))
                copy.thisown = False
                self.this = copy.this
                self.thisown = True
        %}
    }
};

/* Whether a platform (by name) has a native TorchModuleForce kernel (Reference, CPU). */
bool platformHasTorchModuleKernel(const std::string& platformName);

}
