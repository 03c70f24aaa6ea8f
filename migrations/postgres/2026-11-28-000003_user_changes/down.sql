DROP TRIGGER users_notify_change ON users;
DROP FUNCTION usergraph_notify_user_change();
