import math

from ssync_lib.run_log import CsvLog, RunningMeans


def test_csv_log_grows_its_header_and_reloads_exactly(tmp_path):
    path = tmp_path / "log.csv"
    log = CsvLog(path)
    log.append({"step": 1, "loss": 0.1 + 0.2})
    log.append({"step": 2, "loss": 1 / 3, "ssync_dec": 2.5e-7})
    log.append({"step": 3, "loss": math.pi, "ssync_dec": 1.0})
    assert path.read_text().splitlines()[0] == "step,loss,ssync_dec"
    again = CsvLog(path, keep_upto_step=2)  # a resume from step 2 drops the rows logged after it
    assert again.rows == [{"step": 1, "loss": 0.1 + 0.2}, {"step": 2, "loss": 1 / 3, "ssync_dec": 2.5e-7}]
    assert len(path.read_text().splitlines()) == 3
    assert list(again.frame().columns) == ["step", "loss", "ssync_dec"]
    assert CsvLog(path).rows == [] and path.read_text().strip() == ""  # a fresh run starts empty


def test_running_means_pop_and_restore_from_state():
    means = RunningMeans()
    means.add({"loss": 1.0, "recon": 0.5})
    means.add({"loss": 3.0, "recon": 1.5})
    resumed = RunningMeans(means.state_dict())  # what a checkpoint carries
    assert resumed.pop() == means.pop() == {"loss": 2.0, "recon": 1.0}
    assert means.count == 0 and means.sums == {}
