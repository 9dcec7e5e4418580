/*
 * libcudaold.c -- a fake libcuda.so.1 of a driver older than 570 (CUDA
 * 12.4): cuInit and cuDriverGetVersion, and none of the checkpoint API,
 * for the test that llmux names what is missing in one line.
 */
typedef int CUresult;

CUresult	cuInit(unsigned int);
CUresult	cuDriverGetVersion(int *);

CUresult
cuInit(unsigned int flags)
{
	return (flags == 0 ? 0 : 1);
}

CUresult
cuDriverGetVersion(int *v)
{
	*v = 12040;
	return (0);
}
