"""The local rehearsal: AWS stood in for on this machine, so that `make demo` runs the deployed
pipeline end to end. `command_line` parses `python -m pipeline.rehearsal` into `options`; `run`
deploys the synthesized sandbox to moto (`endpoint`; `stack`, which reads `templates` and creates
`resources`), loads the deployed handlers `in_process`, starts executions and runs them step by
step (`executor`: its `graph`, `step_types`, `properties` and `execution_record`, with
`lambda_budget` and `step_records`); the training job goes to `stand_in_trainer`. Nothing here is
deployed.
"""
