-- tomo store, version 5: what the probe found of each server's OS and
-- Docker (`tomo server list`), beside the full facts in `facts_json`.
ALTER TABLE servers ADD COLUMN os_release TEXT;       -- `ID VERSION_ID`, e.g. `debian 12`
ALTER TABLE servers ADD COLUMN arch TEXT;             -- `uname -m`
ALTER TABLE servers ADD COLUMN init_system TEXT;      -- systemd | openrc | unknown
ALTER TABLE servers ADD COLUMN package_manager TEXT;  -- apt-get | dnf | yum | apk | pacman
ALTER TABLE servers ADD COLUMN docker_installed INTEGER;
ALTER TABLE servers ADD COLUMN docker_answers INTEGER;
ALTER TABLE servers ADD COLUMN socket_access INTEGER;
