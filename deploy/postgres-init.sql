-- One database per service (compose runs this once, on an empty volume).
CREATE DATABASE orders;
CREATE DATABASE reports;
CREATE DATABASE scheduler;
CREATE DATABASE notifications;
