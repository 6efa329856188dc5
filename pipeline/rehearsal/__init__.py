"""The local rehearsal: AWS stood in for on this machine, so that `make demo` runs the deployed
pipeline end to end. `run` deploys the synthesized sandbox to moto (`endpoint`, `stack`), starts
executions and runs them step by step (`executor`, with `lambda_budget` and `step_records`); the
training job goes to `stand_in_trainer`. Nothing here is deployed.
"""
