"""Build fastgrad's compiled kernels: one extension, fastgrad._kernels.

OpenMP is proven by compiling and linking a tiny OpenMP program with the
compiler that will build the extension; without it the build goes on serially
and says so loudly. FASTGRAD_DEBUG=1 gives a checked build (Cython bounds
checks, -O0 -g, AddressSanitizer/UBSan where the compiler has them).
"""
import glob
import os
import shutil
import sys
import tempfile
import warnings

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("FASTGRAD_DEBUG", "") not in ("", "0")

OPENMP_PROGRAM = r"""
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    return n > 0 ? 0 : 1;
}
"""

# Flags per compiler family: (compile, link).
OPENMP_FLAGS = {
    "msvc": (["/openmp"], []),
    "apple-clang": (["-Xpreprocessor", "-fopenmp"], ["-lomp"]),
    "unix": (["-fopenmp"], ["-fopenmp"]),
}


def compiler_family(compiler):
    if compiler.compiler_type == "msvc":
        return "msvc"
    if sys.platform == "darwin":
        return "apple-clang"
    return "unix"


def try_compile(compiler, source, compile_args, link_args):
    """True when `source` compiles and links with the given flags."""
    tmp = tempfile.mkdtemp(prefix="fastgrad-omp-")
    try:
        path = os.path.join(tmp, "check.c")
        with open(path, "w") as handle:
            handle.write(source)
        with open(os.devnull, "w") as devnull:
            old = os.dup(2)
            os.dup2(devnull.fileno(), 2)  # keep the probe's errors quiet
            try:
                objects = compiler.compile([path], output_dir=tmp,
                                           extra_postargs=compile_args)
                compiler.link_executable(objects, "check", output_dir=tmp,
                                         extra_postargs=link_args)
            finally:
                os.dup2(old, 2)
                os.close(old)
        return True
    except Exception:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class BuildExt(build_ext):
    def build_extensions(self):
        family = compiler_family(self.compiler)
        compile_args, link_args = OPENMP_FLAGS[family]
        has_openmp = try_compile(self.compiler, OPENMP_PROGRAM,
                                 compile_args, link_args)
        if not has_openmp:
            compile_args, link_args = [], []
            message = ("fastgrad: OpenMP is not available with this compiler; "
                       "building the SERIAL kernels. fastgrad.openmp_enabled() "
                       "will return False.")
            warnings.warn(message)
            print("\n" + "!" * 78 + "\n" + message + "\n" + "!" * 78 + "\n")
        if family == "msvc":
            base = ["/O2"]
        elif DEBUG:
            base = ["-O0", "-g", "-fno-omit-frame-pointer",
                    "-fsanitize=address,undefined"]
            link_args = link_args + ["-fsanitize=address,undefined"]
        else:
            base = ["-O3", "-fno-math-errno", "-fno-trapping-math",
                    "-Wno-unused-function", "-Wno-unknown-pragmas"]
        for ext in self.extensions:
            ext.extra_compile_args = base + compile_args
            ext.extra_link_args = link_args
        super().build_extensions()


def c_sources():
    """The hand-written C files of the extension (every fastgrad/*.c but the
    file Cython generates)."""
    return sorted(path for path in glob.glob("fastgrad/*.c")
                  if os.path.basename(path) != "_kernels.c")


extensions = [
    Extension(
        "fastgrad._kernels",
        sources=["fastgrad/_kernels.pyx"] + c_sources(),
        include_dirs=[numpy.get_include(), "fastgrad"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        depends=glob.glob("fastgrad/*.h") + glob.glob("fastgrad/*.pxi"),
    )
]

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": False,
    "cdivision": not DEBUG,
    "initializedcheck": DEBUG,
    "embedsignature": True,
    "binding": True,
}

setup(
    ext_modules=cythonize(extensions, compiler_directives=directives,
                          force=DEBUG),
    cmdclass={"build_ext": BuildExt},
)
