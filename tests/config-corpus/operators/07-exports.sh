export APP_HOME=/opt/reporting
export JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
export PATH=$PATH:$APP_HOME/bin
pgrepProgramName="java.*reporting"
startCmd=start-reporting.sh
