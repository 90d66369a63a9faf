-- One database per context in the split topology.
create database identity;
create database catalog;
create database ordering;
create database shipping;
