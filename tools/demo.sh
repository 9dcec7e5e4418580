#!/bin/sh
# demo.sh -- `make demo`: start llmux-supervisord and llmux-proxyd with three
# fake models (etc/demo.yaml), send a scripted sequence of requests and show
# each switch. The daemons are still being built; until they are, this says
# what the demo will do.
echo "llmux demo: the supervisor and proxy are not built yet."
echo "When they are, this starts both daemons with etc/demo.yaml (three"
echo "llmux-fakevllm models), sends requests that make llmux switch between"
echo "them, and prints a timeline of each switch."
exit 0
