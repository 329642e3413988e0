# MLP_CUDA=AUTO|ON|OFF: decides whether the CUDA kernels (csrc/cuda) are built, and finds what they
# need: nvcc, the CUDA runtime, and cuBLAS/cuBLASLt, from the toolkit or else from the pip wheel
# nvidia-cublas (found through the Python interpreter). Sets MLP_WITH_CUDA, MLP_CUBLAS_LIBRARIES,
# MLP_CUBLAS_INCLUDE_DIR and MLP_CUDA_RPATH. AUTO stays quiet and builds CPU-only when anything is
# missing; ON stops with a message naming what is missing.

set(MLP_WITH_CUDA OFF)
string(TOUPPER "${MLP_CUDA}" _mlp_cuda_mode)
if(_mlp_cuda_mode MATCHES "^(ON|TRUE|YES|Y|1)$")
  set(_mlp_cuda_mode ON)
elseif(_mlp_cuda_mode MATCHES "^(OFF|FALSE|NO|N|0)$")
  set(_mlp_cuda_mode OFF)
elseif(NOT _mlp_cuda_mode STREQUAL "AUTO")
  message(FATAL_ERROR "MLP_CUDA must be AUTO, ON or OFF, got '${MLP_CUDA}'")
endif()

# A missing piece: fatal for ON, a status line for AUTO.
macro(_mlp_cuda_missing what)
  if(_mlp_cuda_mode STREQUAL "ON")
    message(FATAL_ERROR
      "MLP_CUDA=ON, but ${what}.\n"
      "The CUDA build needs nvcc on the PATH (or CMAKE_CUDA_COMPILER) and cuBLAS: from a CUDA "
      "toolkit that ships it, or from the wheels `pip install nvidia-cublas nvidia-cuda-runtime` "
      "in the Python environment that builds mlp (pip install --no-build-isolation ...). "
      "Use MLP_CUDA=AUTO or OFF for a CPU-only build.")
  endif()
  message(STATUS "mlp: CUDA kernels not built (${what})")
  return()
endmacro()

if(_mlp_cuda_mode STREQUAL "OFF")
  message(STATUS "mlp: CUDA kernels not built (MLP_CUDA=OFF)")
  return()
endif()

# 1. cuBLAS first (cheap): the toolkit's, else the wheel's. Only then is nvcc tried, so that a
#    machine with nvcc but no cuBLAS (the usual CPU-only case here) configures as fast as without.
find_package(CUDAToolkit QUIET)
set(MLP_CUBLAS_LIBRARIES "")
set(MLP_CUBLAS_INCLUDE_DIR "")
set(MLP_CUDA_RPATH "")
if(CUDAToolkit_FOUND AND TARGET CUDA::cublas AND TARGET CUDA::cublasLt)
  set(MLP_CUBLAS_LIBRARIES CUDA::cublas CUDA::cublasLt)
  set(_mlp_cublas_from "CUDA toolkit ${CUDAToolkit_VERSION}")
else()
  # The wheel: nvidia-cublas (CUDA 13: nvidia/cu13/{include,lib}) or nvidia-cublas-cu12
  # (nvidia/cublas/{include,lib}). Prints: include dir; lib dir; lib dir relative to site-packages.
  set(_mlp_find_wheel [=[
import importlib.metadata as md, os, sys
for dist in ("nvidia-cublas", "nvidia-cublas-cu13", "nvidia-cublas-cu12"):
    try:
        files = md.distribution(dist).files or []
    except md.PackageNotFoundError:
        continue
    inc = lib = None
    for f in files:
        if f.name == "cublas_v2.h":
            inc = os.path.dirname(os.path.realpath(f.locate()))
        elif f.name.startswith("libcublas.so"):
            lib = os.path.dirname(os.path.realpath(f.locate()))
            rel = os.path.dirname(str(f))
    if inc and lib:
        print(inc + ";" + lib + ";" + rel, end="")
        sys.exit(0)
sys.exit(1)
]=])
  execute_process(COMMAND "${Python_EXECUTABLE}" -c "${_mlp_find_wheel}"
                  RESULT_VARIABLE _mlp_rc OUTPUT_VARIABLE _mlp_out ERROR_QUIET)
  if(NOT _mlp_rc EQUAL 0)
    _mlp_cuda_missing("cuBLAS was found neither in a CUDA toolkit nor as the pip wheel nvidia-cublas in ${Python_EXECUTABLE}'s environment")
  endif()
  list(GET _mlp_out 0 MLP_CUBLAS_INCLUDE_DIR)
  list(GET _mlp_out 1 _mlp_cublas_libdir)
  list(GET _mlp_out 2 _mlp_cublas_reldir)
  # The wheel ships only versioned names (libcublas.so.13), which find_library does not try.
  file(GLOB _mlp_cublas "${_mlp_cublas_libdir}/libcublas.so*")
  file(GLOB _mlp_cublaslt "${_mlp_cublas_libdir}/libcublasLt.so*")
  if(NOT _mlp_cublas OR NOT _mlp_cublaslt OR NOT EXISTS "${MLP_CUBLAS_INCLUDE_DIR}/cublasLt.h")
    _mlp_cuda_missing("the nvidia-cublas wheel at ${_mlp_cublas_libdir} lacks libcublas, libcublasLt or cublasLt.h")
  endif()
  list(SORT _mlp_cublas)
  list(SORT _mlp_cublaslt)
  list(GET _mlp_cublas 0 _mlp_cublas)
  list(GET _mlp_cublaslt 0 _mlp_cublaslt)
  set(MLP_CUBLAS_LIBRARIES "${_mlp_cublas}" "${_mlp_cublaslt}")
  # The extension finds the wheel's libraries without LD_LIBRARY_PATH: relative to mlp/ inside
  # the same site-packages (installed), or at the absolute path it was built against (dev build).
  set(MLP_CUDA_RPATH "$ORIGIN/../${_mlp_cublas_reldir}" "${_mlp_cublas_libdir}")
  set(_mlp_cublas_from "the nvidia-cublas wheel (${_mlp_cublas_libdir})")
endif()

# 2. nvcc.
include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  _mlp_cuda_missing("no working CUDA compiler (nvcc) was found")
endif()
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  # A100 (sm_80) and H100/H200 (sm_90) machine code, plus sm_90 PTX for later GPUs to JIT.
  set(CMAKE_CUDA_ARCHITECTURES "80-real;90-real;90-virtual")
endif()
enable_language(CUDA)
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
if(NOT CUDAToolkit_FOUND)
  find_package(CUDAToolkit QUIET)
endif()
if(NOT TARGET CUDA::cudart_static)
  _mlp_cuda_missing("the CUDA runtime (cudart) of nvcc's toolkit was not found")
endif()

set(MLP_WITH_CUDA ON)
message(STATUS "mlp: CUDA kernels built with nvcc ${CMAKE_CUDA_COMPILER_VERSION} for "
               "${CMAKE_CUDA_ARCHITECTURES}, cuBLAS from ${_mlp_cublas_from}")
