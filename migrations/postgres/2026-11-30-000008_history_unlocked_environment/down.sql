DROP TRIGGER environments_delete_history ON environments;
DROP FUNCTION usergraph_delete_environment_history();
DELETE FROM user_history
WHERE NOT EXISTS (SELECT FROM environments WHERE environments.id = user_history.environment_id);
ALTER TABLE user_history ADD CONSTRAINT user_history_environment_id_fkey
    FOREIGN KEY (environment_id) REFERENCES environments (id) ON DELETE CASCADE;
