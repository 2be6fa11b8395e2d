DROP TABLE notification_preferences;
DROP TABLE notifications;
DROP TABLE events;
