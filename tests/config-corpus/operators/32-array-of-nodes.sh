nodes=(web01 web02)
pgrepProgramName=frontend
startCmd=/opt/frontend/run
hostName=${nodes[0]}
