/* version.h -- the llmux version, shared by every program and package. */
#ifndef LLMUX_VERSION_H
#define LLMUX_VERSION_H
#define LLMUX_VERSION "0.1.0"
#endif
