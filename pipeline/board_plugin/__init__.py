"""The `tbpipe` tab of TensorBoard: a sweep's runs grouped by setting, seeds pooled.

TensorBoard lists every job's train/ and test/ as separate runs, one colour each, and
cannot group them (its issue #376). This plugin, registered through the
`tensorboard_plugins` entry point, reads the sweep back with the same readback code as
`tbpipe report` and shows one row, one line and one colour per setting.
"""
