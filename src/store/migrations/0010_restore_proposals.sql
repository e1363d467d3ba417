-- tomo store, version 10: restore proposals. A proposal that restores a
-- backup (MCP `backup_restore` by a non-admin, or where
-- `mcp.require_approval` asks for it) holds what to restore as JSON: the
-- archive's location, the parts, the target server and the fingerprint of
-- the archive it was shown. NULL for a proposal of manifest edits.
ALTER TABLE proposals ADD COLUMN restore_json TEXT;
