# Kernels of this area go here (see _kernels.pyx).
