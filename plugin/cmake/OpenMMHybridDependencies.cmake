# The OpenMM and torch that openmm-hybrid's plugin is compiled against: those that the Python
# interpreter imports (the openmm and torch pip wheels), so that the plugin matches them exactly.
#
# Sets (each can be given with -D instead; the missing ones are asked from Python once):
#   OPENMM_HYBRID_OPENMM_LIBRARY_DIR  OpenMM.libs/lib of the wheel (libOpenMM.so, plugins/)
#   OPENMM_HYBRID_OPENMM_INCLUDE_DIR  OpenMM.libs/include (OpenMM.h, swig/)
#   OPENMM_HYBRID_OPENMM_VERSION      Platform.getOpenMMVersion() of that OpenMM
#   OPENMM_HYBRID_TORCH_DIR           the torch package (include/, lib/)       [only with TORCH]
#   OPENMM_HYBRID_TORCH_CXX11_ABI     torch._C._GLIBCXX_USE_CXX11_ABI (0 or 1)  [only with TORCH]
#   OPENMM_HYBRID_TORCH_CUDA          torch.version.cuda, empty for a CPU build [only with TORCH]
# and defines the imported targets OpenMMHybrid::OpenMM and (with TORCH) OpenMMHybrid::Torch
# (libtorch_cpu + libc10).
#
# torch's own CMake package (find_package(Torch) with torch.utils.cmake_prefix_path) is not
# used: for the CUDA build of torch from PyPI it stops with "Your installed Caffe2 version uses
# CUDA but I cannot find the CUDA libraries" wherever no CUDA toolkit is installed, and the CPU
# kernels need only torch/include and torch/lib.
#
# usage: openmm_hybrid_find_dependencies([TORCH]) after find_package(Python3 ... Interpreter ...)

function(openmm_hybrid_find_dependencies)
    cmake_parse_arguments(ARG "TORCH" "" "" ${ARGN})
    set(wanted OPENMM_LIBRARY_DIR OPENMM_INCLUDE_DIR OPENMM_VERSION)
    if(ARG_TORCH)
        list(APPEND wanted TORCH_DIR TORCH_CXX11_ABI TORCH_CUDA)
    endif()
    set(missing FALSE)
    foreach(name ${wanted})
        if(NOT DEFINED OPENMM_HYBRID_${name})
            set(missing TRUE)
        endif()
    endforeach()
    if(missing)
        set(script [=[
import os, openmm, openmm.version
lib = openmm.version.openmm_library_path
print("OPENMM_LIBRARY_DIR=" + lib)
print("OPENMM_INCLUDE_DIR=" + os.path.join(os.path.dirname(lib), "include"))
print("OPENMM_VERSION=" + openmm.Platform.getOpenMMVersion())
if "TORCH" in os.environ.get("OPENMM_HYBRID_LOCATE", ""):
    import torch
    print("TORCH_DIR=" + os.path.dirname(os.path.abspath(torch.__file__)))
    print("TORCH_CXX11_ABI=%d" % int(torch._C._GLIBCXX_USE_CXX11_ABI))
    print("TORCH_CUDA=" + (torch.version.cuda or ""))
]=])
        set(locate "")
        if(ARG_TORCH)
            set(locate TORCH)
        endif()
        execute_process(COMMAND ${CMAKE_COMMAND} -E env OPENMM_HYBRID_LOCATE=${locate} ${Python3_EXECUTABLE} -c "${script}"
                        OUTPUT_VARIABLE output ERROR_VARIABLE error RESULT_VARIABLE result OUTPUT_STRIP_TRAILING_WHITESPACE)
        if(NOT result EQUAL 0)
            message(FATAL_ERROR "openmm-hybrid: ${Python3_EXECUTABLE} cannot import openmm and torch, whose headers and "
                    "libraries the plugin is compiled against (pip install openmm==8.6.1 torch==2.9.1 first, or set "
                    "Python3_EXECUTABLE to the interpreter that has them):\n${error}")
        endif()
        string(REPLACE "\n" ";" lines "${output}")
        foreach(line ${lines})
            if(line MATCHES "^([A-Z0-9_]+)=(.*)$")
                set(name "OPENMM_HYBRID_${CMAKE_MATCH_1}")
                if(NOT DEFINED ${name})
                    set(${name} "${CMAKE_MATCH_2}" CACHE STRING "located with ${Python3_EXECUTABLE}")
                endif()
            endif()
        endforeach()
    endif()

    foreach(needed "${OPENMM_HYBRID_OPENMM_INCLUDE_DIR}/OpenMM.h" "${OPENMM_HYBRID_OPENMM_LIBRARY_DIR}/libOpenMM.so")
        if(NOT EXISTS "${needed}")
            message(FATAL_ERROR "openmm-hybrid: OpenMM ${OPENMM_HYBRID_OPENMM_VERSION} has no ${needed}: the plugin needs "
                    "OpenMM's headers and libraries (the PyPI wheel ships them in OpenMM.libs)")
        endif()
    endforeach()
    if(NOT TARGET OpenMMHybrid::OpenMM)
        add_library(OpenMMHybrid::OpenMM SHARED IMPORTED GLOBAL)
        set_target_properties(OpenMMHybrid::OpenMM PROPERTIES
            IMPORTED_LOCATION "${OPENMM_HYBRID_OPENMM_LIBRARY_DIR}/libOpenMM.so"
            INTERFACE_INCLUDE_DIRECTORIES "${OPENMM_HYBRID_OPENMM_INCLUDE_DIR}")
    endif()
    if(ARG_TORCH AND NOT TARGET OpenMMHybrid::Torch)
        set(torch_lib "${OPENMM_HYBRID_TORCH_DIR}/lib")
        foreach(needed "${OPENMM_HYBRID_TORCH_DIR}/include/torch/script.h" "${torch_lib}/libtorch_cpu.so" "${torch_lib}/libc10.so")
            if(NOT EXISTS "${needed}")
                message(FATAL_ERROR "openmm-hybrid: torch in ${OPENMM_HYBRID_TORCH_DIR} has no ${needed}: the plugin "
                        "needs libtorch's headers and libraries (the PyPI wheel ships them)")
            endif()
        endforeach()
        add_library(OpenMMHybrid::Torch INTERFACE IMPORTED GLOBAL)
        set_target_properties(OpenMMHybrid::Torch PROPERTIES
            INTERFACE_INCLUDE_DIRECTORIES "${OPENMM_HYBRID_TORCH_DIR}/include;${OPENMM_HYBRID_TORCH_DIR}/include/torch/csrc/api/include"
            INTERFACE_LINK_LIBRARIES "${torch_lib}/libtorch_cpu.so;${torch_lib}/libc10.so")
    endif()
endfunction()
